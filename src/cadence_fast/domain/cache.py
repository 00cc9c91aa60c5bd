"""The in-process domain cache: every request resolves its domain here.

Lookups are dict hits. The cache follows the store's domain metadata version (bumped by
every domain write, whichever process made it): a background task polls the version every
`poll_interval` seconds and reloads every domain when it moved, and this process's own
writes refresh it at once (`domain.registry` calls `refresh()` after each commit), so a
domain is visible to the next request of the process that registered it.

A name or id that is not cached is looked up in the store once before failing, because
another process may have registered it since the last poll (as Go Cadence's cache does on
a miss); unknown names then fail with EntityNotExistsError.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field

from cadence.api.v1 import domain_pb2

from cadence_fast import errors
from cadence_fast.persistence import errors as store_errors
from cadence_fast.persistence.records import DomainRecord
from cadence_fast.persistence.store import Store

log = logging.getLogger(__name__)

POLL_INTERVAL_SECONDS = 1.0
_LIST_PAGE_SIZE = 1000


@dataclass(frozen=True, slots=True)
class DomainEntry:
    """One domain as the rest of the server sees it (immutable: replaced on change)."""

    id: str
    name: str
    status: int  # domain_pb2.DomainStatus
    retention_seconds: int
    info: domain_pb2.Domain = field(repr=False, compare=False)  # the full message; treat as read-only
    notification_version: int = 0

    @property
    def deprecated(self) -> bool:
        return self.status == domain_pb2.DOMAIN_STATUS_DEPRECATED

    @classmethod
    def from_record(cls, record: DomainRecord) -> DomainEntry:
        info = domain_pb2.Domain.FromString(record.data)
        # The record's columns are authoritative for the fields the store indexes.
        info.id = record.domain_id
        info.name = record.name
        info.status = record.status  # type: ignore[assignment]
        return cls(
            id=record.domain_id,
            name=record.name,
            status=record.status,
            retention_seconds=info.workflow_execution_retention_period.seconds,
            info=info,
            notification_version=record.notification_version,
        )


def not_exists(name: str) -> errors.EntityNotExistsError:
    return errors.EntityNotExistsError(f"Domain: {name} does not exist.")


class DomainCache:
    def __init__(self, store: Store, poll_interval: float = POLL_INTERVAL_SECONDS) -> None:
        self.store = store
        self.poll_interval = poll_interval
        self._by_name: dict[str, DomainEntry] = {}
        self._by_id: dict[str, DomainEntry] = {}
        self._version = -1  # metadata version the dicts reflect; -1: reload on next refresh
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.refresh()
        self._task = asyncio.create_task(self._poll(), name="domain-cache-poll")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    # --- lookups (the hot path) --------------------------------------------------------

    async def get_by_name(self, name: str) -> DomainEntry:
        entry = self._by_name.get(name)
        if entry is not None:
            return entry
        return await self._load(name=name)

    async def get_by_id(self, domain_id: str) -> DomainEntry:
        entry = self._by_id.get(domain_id)
        if entry is not None:
            return entry
        return await self._load(domain_id=domain_id)

    def entries(self) -> list[DomainEntry]:
        """Every cached domain, by name (a snapshot)."""
        return [self._by_name[n] for n in sorted(self._by_name)]

    # --- freshness ------------------------------------------------------------------------

    async def refresh(self, force: bool = False) -> None:
        """Reload every domain if the store's metadata version moved (or force)."""
        async with self._lock:
            version = await self.store.get_metadata_version()
            if version == self._version and not force:
                return
            by_name: dict[str, DomainEntry] = {}
            token: bytes | None = None
            while True:
                records, token = await self.store.list_domains(_LIST_PAGE_SIZE, token)
                for record in records:
                    by_name[record.name] = DomainEntry.from_record(record)
                if not token:
                    break
            # Swap whole dicts so a concurrent lookup sees either the old or the new set.
            self._by_name = by_name
            self._by_id = {e.id: e for e in by_name.values()}
            self._version = version

    async def _load(self, *, name: str | None = None, domain_id: str | None = None) -> DomainEntry:
        try:
            record = await self.store.get_domain(name=name, domain_id=domain_id)
        except store_errors.NotFound:
            raise not_exists(name if name is not None else f"id {domain_id}") from None
        entry = DomainEntry.from_record(record)
        # Only add; the next version poll brings the rest (and removes deleted ones).
        self._by_name = {**self._by_name, entry.name: entry}
        self._by_id = {**self._by_id, entry.id: entry}
        return entry

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(self.poll_interval)
            try:
                await self.refresh()
            except store_errors.StoreError as e:
                # Keep serving what we have; the next poll retries.
                log.warning("domain cache refresh failed: %s", e)
