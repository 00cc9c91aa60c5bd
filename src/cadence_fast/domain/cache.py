"""Domain cache (stub: filled in by the domains work)."""

from __future__ import annotations

from cadence_fast.persistence.store import Store


class DomainCache:
    def __init__(self, store: Store) -> None:
        self.store = store

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass
