"""Domains: an id table and one name-ordered partition whose static column is the metadata version.

Every domain write is one conditional batch on the ``domains_by_name`` partition: the
row change (``IF NOT EXISTS`` / ``IF domain_id = ?``) together with
``metadata_version = v + 1 IF metadata_version = v``, so the version moves exactly
with the writes; a write that lost the version race reads it again and retries.
The id is claimed first in ``domains`` (``IF NOT EXISTS``) and released if the name
turns out to be taken.
"""

from __future__ import annotations

import logging
from typing import Any

from cadence_fast.errors import BadRequestError
from cadence_fast.persistence.errors import AlreadyExists, NotFound, StoreError, Unavailable
from cadence_fast.persistence.records import DomainRecord
from cadence_fast_cassandra.base import CAS_RETRIES, NO_LIMIT, ConnectedStore
from cadence_fast_cassandra.driver import Row, applied

log = logging.getLogger("cadence_fast.cassandra")

_DOMAIN_COLS = "domain_id, name, status, data, notification_version"


def _domain(r: Row) -> DomainRecord:
    return DomainRecord(
        domain_id=r["domain_id"],
        name=r["name"],
        status=int(r["status"] or 0),
        data=r["data"] or b"",
        notification_version=int(r["notification_version"] or 0),
    )


class _Contention(Unavailable):
    """Lost the metadata-version race too often: nothing was written."""


class DomainStore(ConnectedStore):
    async def _metadata_version(self, serial: bool = True) -> int | None:
        rows = await self._c().execute(
            "SELECT metadata_version FROM domains_by_name WHERE domains_partition = 0 LIMIT 1",
            serial_read=serial,
        )
        return None if not rows or rows[0]["metadata_version"] is None else int(rows[0]["metadata_version"])

    @staticmethod
    def _bump(version: int | None) -> tuple[str, tuple[Any, ...]]:
        """The static-column statement of every domain write: version + 1, IF it is still `version`."""
        return (
            "UPDATE domains_by_name SET metadata_version = ? WHERE domains_partition = 0 IF metadata_version = ?",
            ((version or 0) + 1, version),
        )

    async def _name_of(self, domain_id: str) -> str:
        rows = await self._c().execute(
            "SELECT name FROM domains WHERE domain_id = ?", (domain_id,), serial_read=True
        )
        if not rows or rows[0]["name"] is None:
            raise NotFound(f"domain id {domain_id!r} not found")
        return str(rows[0]["name"])

    async def _by_name(self, name: str, serial: bool = False) -> Row | None:
        rows = await self._c().execute(
            f"SELECT {_DOMAIN_COLS} FROM domains_by_name WHERE domains_partition = 0 AND name = ?",
            (name,),
            serial_read=serial,
        )
        return rows[0] if rows and rows[0]["domain_id"] is not None else None

    async def create_domain(self, domain: DomainRecord) -> int:
        c = self._c()
        d = domain
        # The id first (its own partition): a taken id fails before anything else is written.
        if not applied(
            await c.execute(
                "INSERT INTO domains (domain_id, name) VALUES (?, ?) IF NOT EXISTS", (d.domain_id, d.name)
            )
        ):
            raise AlreadyExists(f"domain id {d.domain_id!r} already exists")
        try:
            for _ in range(CAS_RETRIES):
                version = await self._metadata_version()
                new = (version or 0) + 1
                rows = await c.batch(
                    [
                        (
                            "INSERT INTO domains_by_name (domains_partition, name, domain_id, status, data, "
                            "notification_version) VALUES (0, ?, ?, ?, ?, ?) IF NOT EXISTS",
                            (d.name, d.domain_id, d.status, d.data, new),
                        ),
                        self._bump(version),
                    ]
                )
                if applied(rows):
                    d.notification_version = new
                    return new
                if await self._by_name(d.name, serial=True) is not None:
                    raise AlreadyExists(f"domain name {d.name!r} already exists")
                # Else another domain write bumped the version meanwhile: read it again.
            raise _Contention("domain metadata version: too much contention, try again")
        except Unavailable as e:
            if not isinstance(e, _Contention):
                raise  # a timeout: the batch may have applied, so the id stays claimed
            await self._release_id(d)
            raise
        except BaseException:
            await self._release_id(d)
            raise

    async def _release_id(self, d: DomainRecord) -> None:
        """Give the domain id back after a create that did not apply (only if it is still ours)."""
        try:
            await self._c().execute(
                "DELETE FROM domains WHERE domain_id = ? IF name = ?", (d.domain_id, d.name)
            )
        except StoreError:
            log.warning("could not release domain id %s after a failed create", d.domain_id)

    async def get_domain(self, *, domain_id: str | None = None, name: str | None = None) -> DomainRecord:
        if domain_id is not None:
            row = await self._by_name(await self._name_of(domain_id))
            if row is None or row["domain_id"] != domain_id:
                raise NotFound(f"domain id {domain_id!r} not found")
            return _domain(row)
        if name is None:
            raise ValueError("get_domain needs domain_id or name")
        row = await self._by_name(name)
        if row is None:
            raise NotFound(f"domain name {name!r} not found")
        return _domain(row)

    async def _domain_write(
        self, domain_id: str, statement: tuple[str, tuple[Any, ...]] | None, d: DomainRecord | None
    ) -> int:
        """An update (d given) or delete of the domain's name row, with the version bump, as one LWT batch."""
        name = await self._name_of(domain_id)
        for _ in range(CAS_RETRIES):
            version = await self._metadata_version()
            new = (version or 0) + 1
            if d is not None:
                stmt: tuple[str, tuple[Any, ...]] = (
                    "UPDATE domains_by_name SET status = ?, data = ?, notification_version = ? "
                    "WHERE domains_partition = 0 AND name = ? IF domain_id = ?",
                    (d.status, d.data, new, name, domain_id),
                )
            else:
                assert statement is not None
                stmt = statement
            if applied(await self._c().batch([stmt, self._bump(version)])):
                return new
            row = await self._by_name(name, serial=True)
            if row is None or row["domain_id"] != domain_id:
                raise NotFound(f"domain id {domain_id!r} not found")
        raise Unavailable("domain metadata version: too much contention, try again")

    async def update_domain(self, domain: DomainRecord) -> int:
        version = await self._domain_write(domain.domain_id, None, domain)
        domain.notification_version = version
        return version

    async def delete_domain(self, domain_id: str) -> None:
        name = await self._name_of(domain_id)
        await self._domain_write(
            domain_id,
            (
                "DELETE FROM domains_by_name WHERE domains_partition = 0 AND name = ? IF domain_id = ?",
                (name, domain_id),
            ),
            None,
        )
        await self._c().execute("DELETE FROM domains WHERE domain_id = ?", (domain_id,))

    async def list_domains(
        self, page_size: int, next_page_token: bytes | None
    ) -> tuple[list[DomainRecord], bytes | None]:
        after = None
        if next_page_token:
            if next_page_token[:1] != b"s":
                raise BadRequestError("next_page_token is not a valid list_domains page token")
            after = next_page_token[1:].decode("utf-8")
        limit = page_size if page_size > 0 else NO_LIMIT - 1
        if after is None:
            rows = await self._c().execute(
                f"SELECT {_DOMAIN_COLS} FROM domains_by_name WHERE domains_partition = 0 LIMIT ?",
                (limit + 1,),
            )
        else:
            rows = await self._c().execute(
                f"SELECT {_DOMAIN_COLS} FROM domains_by_name WHERE domains_partition = 0 AND name > ? LIMIT ?",
                (after, limit + 1),
            )
        # A partition holding only its static version row reads back as one row without a name.
        domains = [_domain(r) for r in rows if r["name"] is not None and r["domain_id"] is not None]
        if len(domains) > limit:
            domains = domains[:limit]
            return domains, b"s" + domains[-1].name.encode("utf-8")
        return domains, None

    async def get_metadata_version(self) -> int:
        return await self._metadata_version(serial=False) or 0
