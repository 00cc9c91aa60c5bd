"""Matching engine (stub: filled in by the execution-core work)."""

from __future__ import annotations

from cadence_fast.persistence.store import Store


class MatchingEngine:
    def __init__(self, store: Store) -> None:
        self.store = store

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass
