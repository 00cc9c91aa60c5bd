"""The storage conformance kit against the built-in SQLite adapter, on a file and in memory."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from cadence_fast.persistence.testing.suite import *  # noqa: F403


@pytest.fixture(params=["file", "memory"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "memory":
        yield "sqlite://:memory:"
    else:
        yield f"sqlite:///{tmp_path}/kit.db"
