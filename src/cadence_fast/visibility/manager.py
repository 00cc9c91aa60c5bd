"""Visibility manager (stub: filled in by the visibility work)."""

from __future__ import annotations

from cadence_fast.config import ServerConfig
from cadence_fast.domain.cache import DomainCache
from cadence_fast.persistence.store import Store


class VisibilityManager:
    def __init__(self, store: Store, config: ServerConfig, domains: DomainCache) -> None:
        self.store = store
        self.config = config
        self.domains = domains

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass
