"""The module named by the entry point: implements the one storage hook."""

from __future__ import annotations

from cadence_fast.persistence.hookspecs import hookimpl
from cadence_fast.persistence.sqlite.store import SQLiteStore


class ExampleStore(SQLiteStore):
    """A real adapter implements every Store method; this one borrows SQLite's to stay tiny."""

    schemes = ("example",)

    def __init__(self, url: str) -> None:
        # example:///path.db -> sqlite:///path.db; the URL shown to the user stays ours.
        super().__init__("sqlite" + url[len("example") :])
        self.url = url


@hookimpl
def cadence_fast_storage_adapters() -> list[type]:
    return [ExampleStore]
