"""Domains (with the metadata version) and shards (range_id fencing) on SQLite."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Sequence
from typing import Any

from cadence_fast.persistence.errors import AlreadyExists, NotFound, ShardOwnershipLost
from cadence_fast.persistence.records import DomainRecord, ShardRecord
from cadence_fast.persistence.sqlite.base import SQLiteBase

_SHARD_COLUMNS = "shard_id, range_id, owner, transfer_ack_level, timer_ack_level, data, updated_at"
_DOMAIN_COLUMNS = "domain_id, name, status, data, notification_version"


def _shard(row: Sequence[Any]) -> ShardRecord:
    return ShardRecord(row[0], row[1], row[2], row[3], row[4], row[5], row[6])


def _domain(row: Sequence[Any]) -> DomainRecord:
    return DomainRecord(row[0], row[1], row[2], row[3], row[4])


class DomainsAndShards(SQLiteBase):
    # --- domains --------------------------------------------------------------------

    @staticmethod
    def _bump_metadata(conn: sqlite3.Connection) -> int:
        row = conn.execute(
            "UPDATE domain_metadata SET notification_version = notification_version + 1 WHERE id = 1 "
            "RETURNING notification_version"
        ).fetchall()
        return int(row[0][0])

    async def create_domain(self, domain: DomainRecord) -> int:
        def job(conn: sqlite3.Connection) -> int:
            taken = conn.execute(
                "SELECT domain_id, name FROM domains WHERE domain_id = ? OR name = ?",
                (domain.domain_id, domain.name),
            ).fetchone()
            if taken is not None:
                what = f"name {domain.name!r}" if taken[1] == domain.name else f"id {domain.domain_id}"
                raise AlreadyExists(f"a domain with {what} already exists")
            version = self._bump_metadata(conn)
            conn.execute(
                f"INSERT INTO domains ({_DOMAIN_COLUMNS}) VALUES (?, ?, ?, ?, ?)",
                (domain.domain_id, domain.name, domain.status, bytes(domain.data), version),
            )
            return version

        version = await self._write(job)
        domain.notification_version = version
        return version

    async def get_domain(self, *, domain_id: str | None = None, name: str | None = None) -> DomainRecord:
        if (domain_id is None) == (name is None):
            raise ValueError("get_domain needs exactly one of domain_id or name")
        column, value = ("domain_id", domain_id) if domain_id is not None else ("name", name)
        row = await self._read(
            lambda c: c.execute(
                f"SELECT {_DOMAIN_COLUMNS} FROM domains WHERE {column} = ?", (value,)
            ).fetchone()
        )
        if row is None:
            raise NotFound(f"domain {column.replace('_', ' ')} {value!r} does not exist")
        return _domain(row)

    async def update_domain(self, domain: DomainRecord) -> int:
        def job(conn: sqlite3.Connection) -> int:
            version = self._bump_metadata(conn)
            cur = conn.execute(
                "UPDATE domains SET status = ?, data = ?, notification_version = ? WHERE domain_id = ?",
                (domain.status, bytes(domain.data), version, domain.domain_id),
            )
            if cur.rowcount != 1:
                raise NotFound(f"domain id {domain.domain_id!r} does not exist")
            return version

        version = await self._write(job)
        domain.notification_version = version
        return version

    async def delete_domain(self, domain_id: str) -> None:
        def job(conn: sqlite3.Connection) -> None:
            if conn.execute("DELETE FROM domains WHERE domain_id = ?", (domain_id,)).rowcount != 1:
                raise NotFound(f"domain id {domain_id!r} does not exist")
            self._bump_metadata(conn)

        await self._write(job)

    async def list_domains(
        self, page_size: int, next_page_token: bytes | None
    ) -> tuple[list[DomainRecord], bytes | None]:
        after = next_page_token.decode("utf-8", "surrogatepass") if next_page_token else None
        limit = page_size if page_size > 0 else -1

        def read(conn: sqlite3.Connection) -> list[Any]:
            if after is None:
                return conn.execute(
                    f"SELECT {_DOMAIN_COLUMNS} FROM domains ORDER BY name LIMIT ?", (limit + (limit > 0),)
                ).fetchall()
            return conn.execute(
                f"SELECT {_DOMAIN_COLUMNS} FROM domains WHERE name > ? ORDER BY name LIMIT ?",
                (after, limit + (limit > 0)),
            ).fetchall()

        rows = await self._read(read)
        domains = [_domain(r) for r in rows]
        if page_size > 0 and len(domains) > page_size:
            domains = domains[:page_size]
            return domains, domains[-1].name.encode("utf-8", "surrogatepass")
        return domains, None

    async def get_metadata_version(self) -> int:
        row = await self._read(
            lambda c: c.execute("SELECT notification_version FROM domain_metadata WHERE id = 1").fetchone()
        )
        return int(row[0])

    # --- shards ---------------------------------------------------------------------

    async def get_or_create_shard(self, shard_id: int) -> ShardRecord:
        state = self._txn_state()

        def job(conn: sqlite3.Connection) -> Any:
            state.shard_ranges.pop(shard_id, None)  # writes `shards`: the fencing memo re-reads
            conn.execute(
                f"INSERT OR IGNORE INTO shards ({_SHARD_COLUMNS}) VALUES (?, 0, '', 0, 0, x'', ?)",
                (shard_id, time.time_ns()),
            )
            return conn.execute(
                f"SELECT {_SHARD_COLUMNS} FROM shards WHERE shard_id = ?", (shard_id,)
            ).fetchone()

        row = await self._read(
            lambda c: c.execute(
                f"SELECT {_SHARD_COLUMNS} FROM shards WHERE shard_id = ?", (shard_id,)
            ).fetchone()
        )
        if row is None:
            row = await self._write(job)
        return _shard(row)

    async def update_shard(self, shard: ShardRecord, previous_range_id: int) -> None:
        state = self._txn_state()

        def job(conn: sqlite3.Connection) -> None:
            # Writes `shards`: the fencing memo of this transaction (TxnState) must follow.
            state.shard_ranges.pop(shard.shard_id, None)
            cur = conn.execute(
                "UPDATE shards SET range_id = ?, owner = ?, transfer_ack_level = ?, timer_ack_level = ?, data = ?, "
                "updated_at = ? WHERE shard_id = ? AND range_id = ?",
                (
                    shard.range_id,
                    shard.owner,
                    shard.transfer_ack_level,
                    shard.timer_ack_level,
                    bytes(shard.data),
                    shard.updated_at,
                    shard.shard_id,
                    previous_range_id,
                ),
            )
            if cur.rowcount != 1:
                row = conn.execute(
                    "SELECT range_id FROM shards WHERE shard_id = ?", (shard.shard_id,)
                ).fetchone()
                now = "no such shard" if row is None else f"range_id is {row[0]}"
                raise ShardOwnershipLost(
                    shard.shard_id, f"shard {shard.shard_id}: {now}, this owner expected {previous_range_id}"
                )
            state.shard_ranges[shard.shard_id] = shard.range_id

        await self._write(job)
