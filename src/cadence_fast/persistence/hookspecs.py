"""Plugin hooks for storage adapters (pluggy project name: ``cadence_fast``).

A distribution adds an adapter by exposing a module in the ``cadence_fast.storage``
entry point group that implements `cadence_fast_storage_adapters`. The built-in SQLite
adapter registers through the very same hook.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from cadence_fast.persistence.store import Store

PROJECT = "cadence_fast"
ENTRY_POINT_GROUP = "cadence_fast.storage"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


class StorageSpec:
    @hookspec
    def cadence_fast_storage_adapters(self) -> list[type[Store]]:  # type: ignore[empty-body]
        """Return the Store subclasses this plugin provides; each names its URL schemes in `schemes`."""
