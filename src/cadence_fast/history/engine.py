"""History engine (stub: filled in by the execution-core work)."""

from __future__ import annotations

from cadence_fast.config import ServerConfig
from cadence_fast.domain.cache import DomainCache
from cadence_fast.matching.engine import MatchingEngine
from cadence_fast.persistence.store import Store


class HistoryEngine:
    def __init__(self, store: Store, config: ServerConfig, domains: DomainCache, matching: MatchingEngine) -> None:
        self.store = store
        self.config = config
        self.domains = domains
        self.matching = matching

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass
