"""Domain registration: validation and every domain write (register, update, deprecate, delete).

The API layer hands the request messages here and wraps what comes back; this module owns
the rules. A domain is stored as a serialized `api.v1.Domain` in `DomainRecord.data`, so
DescribeDomain returns exactly what was written.

Rules (as Go Cadence's frontend and domain handler, for a single cluster):
- name: non-empty, at most NAME_MAX_LENGTH (Go's `DomainNameMaxLength`, 1000) characters,
  matching NAME_PATTERN: letters, digits, '_', '-', '.', not starting with a punctuation
  mark. Go Cadence itself only enforces non-empty and the length; the pattern keeps names
  safe in CLI arguments, visibility queries and log lines.
- workflow_execution_retention_period: 1..30 days (Go's MinRetentionDays / MaxRetentionDays
  defaults), whole seconds; kept exactly as given (Go truncates to whole days).
- archival: this server has no archiver, so ENABLED is refused (as Go does for a cluster
  without archival configured); URIs are stored but inert.
- clusters / active_cluster_name: only the single cluster CLUSTER_NAME exists; domains are
  registered active in it. is_global_domain is accepted and stored.
- update: `update_mask.paths` names what changes (proto field names of UpdateDomainRequest);
  `data` and `bad_binaries` are merged into what is stored, as Go does; an unknown path is
  a BadRequest and nothing is written.
Every write bumps the store's metadata version; the cache is refreshed right after the
commit so the next request of this process sees the change.
"""

from __future__ import annotations

import asyncio
import re
import uuid

from cadence.api.v1 import domain_pb2, service_domain_pb2
from google.protobuf import duration_pb2, timestamp_pb2

from cadence_fast import errors
from cadence_fast.domain.cache import DomainCache, not_exists
from cadence_fast.persistence import errors as store_errors
from cadence_fast.persistence.records import DomainRecord
from cadence_fast.persistence.store import Store

#: The one cluster of this server; every domain is active in it (see the module docstring).
CLUSTER_NAME = "cluster0"
NAME_MAX_LENGTH = 1000
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")
DAY_SECONDS = 24 * 3600
MIN_RETENTION_DAYS = 1
MAX_RETENTION_DAYS = 30
DESCRIPTION_MAX_LENGTH = 10_000
OWNER_EMAIL_MAX_LENGTH = 1000
DATA_MAX_ENTRIES = 100
DATA_MAX_KEY_LENGTH = 1000
DATA_MAX_VALUE_LENGTH = 10_000
MAX_BAD_BINARIES = 10  # Go's frontend.maxBadBinaries default
LIST_DEFAULT_PAGE_SIZE = 100
LIST_MAX_PAGE_SIZE = 1000
LOCAL_FAILOVER_VERSION = -1  # Go's common.EmptyVersion: a local domain never fails over

#: UpdateDomainRequest fields an update mask may name.
UPDATE_PATHS = frozenset(
    {
        "description",
        "owner_email",
        "data",
        "workflow_execution_retention_period",
        "bad_binaries",
        "delete_bad_binary",
        "history_archival_status",
        "history_archival_uri",
        "visibility_archival_status",
        "visibility_archival_uri",
        "active_cluster_name",
        "clusters",
        "failover_timeout",
        "active_clusters",
    }
)


def bad(message: str) -> errors.BadRequestError:
    return errors.BadRequestError(message)


# --- validation ------------------------------------------------------------------------


def validate_name(name: str, field: str = "name") -> None:
    if not name:
        raise bad(f"{field} is not set on request: a domain name is required.")
    if len(name) > NAME_MAX_LENGTH:
        raise bad(f"{field} is too long: {len(name)} characters, the limit is {NAME_MAX_LENGTH}.")
    if not NAME_PATTERN.match(name):
        raise bad(
            f"{field} {name!r} is not a valid domain name: use letters, digits, '_', '-' and '.', "
            "starting with a letter or digit."
        )


def validate_retention(period: duration_pb2.Duration) -> duration_pb2.Duration:
    field = "workflow_execution_retention_period"
    seconds = period.seconds
    low, high = MIN_RETENTION_DAYS * DAY_SECONDS, MAX_RETENTION_DAYS * DAY_SECONDS
    if period.nanos or not low <= seconds <= high:
        shown = f"{seconds + period.nanos / 1e9:g}s"
        raise bad(
            f"{field} must be between {MIN_RETENTION_DAYS} and {MAX_RETENTION_DAYS} days in whole seconds, got {shown}."
        )
    return duration_pb2.Duration(seconds=seconds)


def validate_text(value: str, field: str, limit: int) -> None:
    if len(value) > limit:
        raise bad(f"{field} is too long: {len(value)} characters, the limit is {limit}.")


def validate_data(data: dict[str, str], field: str = "data") -> None:
    if len(data) > DATA_MAX_ENTRIES:
        raise bad(f"{field} has {len(data)} entries, the limit is {DATA_MAX_ENTRIES}.")
    for key, value in data.items():
        if not key:
            raise bad(f"{field} has an empty key.")
        validate_text(key, f"{field} key", DATA_MAX_KEY_LENGTH)
        validate_text(value, f"{field}[{key!r}]", DATA_MAX_VALUE_LENGTH)


def validate_archival(status: int, field: str) -> int:
    if status == domain_pb2.ARCHIVAL_STATUS_ENABLED:
        raise bad(f"{field}: archival is not supported by this server; it can only be DISABLED.")
    if status not in (domain_pb2.ARCHIVAL_STATUS_INVALID, domain_pb2.ARCHIVAL_STATUS_DISABLED):
        raise bad(f"{field}: unknown archival status {status}.")
    return domain_pb2.ARCHIVAL_STATUS_DISABLED


def validate_clusters(
    active_cluster_name: str,
    clusters: list[domain_pb2.ClusterReplicationConfiguration],
    has_active_clusters: bool,
) -> None:
    if active_cluster_name and active_cluster_name != CLUSTER_NAME:
        raise bad(
            f"active_cluster_name {active_cluster_name!r} is not a cluster of this server; "
            f"the only cluster is {CLUSTER_NAME!r}."
        )
    for c in clusters:
        if c.cluster_name != CLUSTER_NAME:
            raise bad(
                f"clusters: {c.cluster_name!r} is not a cluster of this server; the only cluster is {CLUSTER_NAME!r}."
            )
    if has_active_clusters:
        raise bad(
            f"active_clusters: active-active domains need several clusters; the only one is {CLUSTER_NAME!r}."
        )


def merge_bad_binaries(stored: domain_pb2.BadBinaries, added: domain_pb2.BadBinaries, now_ns: int) -> None:
    for checksum, info in added.binaries.items():
        if not checksum:
            raise bad("bad_binaries has an empty checksum key.")
        entry = stored.binaries[checksum]
        entry.CopyFrom(info)
        if not entry.HasField("created_time"):
            entry.created_time.FromNanoseconds(now_ns)
    if len(stored.binaries) > MAX_BAD_BINARIES:
        raise bad(
            f"bad_binaries: at most {MAX_BAD_BINARIES} bad binaries per domain, would have {len(stored.binaries)}."
        )


def _now_ns() -> int:
    ts = timestamp_pb2.Timestamp()
    ts.GetCurrentTime()
    return ts.ToNanoseconds()


# --- writes --------------------------------------------------------------------------------


class DomainRegistry:
    """Register, update, deprecate and delete domains; reads for DescribeDomain/ListDomains."""

    def __init__(self, store: Store, cache: DomainCache) -> None:
        self.store = store
        self.cache = cache
        # Updates are read-modify-write of one blob: serialize them within the process so
        # two concurrent updates of different fields cannot lose one another.
        self._write_lock = asyncio.Lock()

    async def register(self, request: service_domain_pb2.RegisterDomainRequest) -> domain_pb2.Domain:
        validate_name(request.name)
        retention = validate_retention(request.workflow_execution_retention_period)
        validate_text(request.description, "description", DESCRIPTION_MAX_LENGTH)
        validate_text(request.owner_email, "owner_email", OWNER_EMAIL_MAX_LENGTH)
        validate_data(dict(request.data))
        validate_clusters(
            request.active_cluster_name,
            list(request.clusters),
            request.HasField("active_clusters") or bool(request.active_clusters_by_region),
        )
        domain = domain_pb2.Domain(
            id=str(uuid.uuid4()),
            name=request.name,
            status=domain_pb2.DOMAIN_STATUS_REGISTERED,
            description=request.description,
            owner_email=request.owner_email,
            data=dict(request.data),
            workflow_execution_retention_period=retention,
            history_archival_status=validate_archival(
                request.history_archival_status, "history_archival_status"
            ),
            history_archival_uri=request.history_archival_uri,
            visibility_archival_status=validate_archival(
                request.visibility_archival_status, "visibility_archival_status"
            ),
            visibility_archival_uri=request.visibility_archival_uri,
            active_cluster_name=CLUSTER_NAME,
            clusters=[domain_pb2.ClusterReplicationConfiguration(cluster_name=CLUSTER_NAME)],
            failover_version=0 if request.is_global_domain else LOCAL_FAILOVER_VERSION,
            is_global_domain=request.is_global_domain,
        )
        domain.bad_binaries.SetInParent()
        async with self._write_lock:
            try:
                await self.store.create_domain(self._record(domain))
            except store_errors.AlreadyExists:
                raise errors.DomainAlreadyExistsError("Domain already exists.") from None
            await self.cache.refresh()
        return domain

    async def describe(self, *, name: str = "", domain_id: str = "") -> domain_pb2.Domain:
        """Read from the store, not the cache: a describe must see writes of other processes."""
        if not name and not domain_id:
            raise bad("name or id must be set on DescribeDomainRequest.")
        try:
            record = await self.store.get_domain(name=name or None, domain_id=domain_id or None)
        except store_errors.NotFound:
            raise not_exists(name or f"id {domain_id}") from None
        return self._decode(record)

    async def list(self, page_size: int, next_page_token: bytes) -> tuple[list[domain_pb2.Domain], bytes]:
        if page_size < 0:
            raise bad(f"page_size must not be negative, got {page_size}.")
        size = min(page_size or LIST_DEFAULT_PAGE_SIZE, LIST_MAX_PAGE_SIZE)
        try:
            records, token = await self.store.list_domains(size, next_page_token or None)
        except ValueError:
            raise bad("next_page_token is not a token this server returned.") from None
        return [self._decode(r) for r in records], token or b""

    async def update(self, request: service_domain_pb2.UpdateDomainRequest) -> domain_pb2.Domain:
        validate_name(request.name)
        paths = list(request.update_mask.paths)
        unknown = [p for p in paths if p not in UPDATE_PATHS]
        if unknown:
            raise bad(
                f"update_mask.paths: unknown field {unknown[0]!r}; updatable fields are "
                f"{', '.join(sorted(UPDATE_PATHS))}."
            )
        async with self._write_lock:
            record = await self._get(request.name)
            domain = self._decode(record)
            self._apply_update(domain, request, set(paths))
            if paths:
                record.data = domain.SerializeToString()
                await self.store.update_domain(record)
                await self.cache.refresh()
        return domain

    async def deprecate(self, name: str) -> None:
        validate_name(name)
        async with self._write_lock:
            record = await self._get(name)
            if record.status == domain_pb2.DOMAIN_STATUS_DEPRECATED:
                return  # idempotent, as Go's
            domain = self._decode(record)
            domain.status = domain_pb2.DOMAIN_STATUS_DEPRECATED
            record.status = domain_pb2.DOMAIN_STATUS_DEPRECATED
            record.data = domain.SerializeToString()
            await self.store.update_domain(record)
            await self.cache.refresh()

    async def delete(self, name: str) -> None:
        validate_name(name)
        async with self._write_lock:
            record = await self._get(name)
            if record.status != domain_pb2.DOMAIN_STATUS_DEPRECATED:
                raise bad(f"Domain {name} is not deprecated: deprecate it before deleting it.")
            try:
                await self.store.delete_domain(record.domain_id)
            except store_errors.NotFound:
                raise not_exists(name) from None
            await self.cache.refresh()

    async def failover(self, request: service_domain_pb2.FailoverDomainRequest) -> None:
        validate_name(request.domain_name, "domain_name")
        await self._get(request.domain_name)
        raise bad(
            f"FailoverDomain: domain {request.domain_name} cannot fail over: this server has a single "
            f"cluster, {CLUSTER_NAME!r}, which is always the active one."
        )

    # --- helpers -------------------------------------------------------------------------

    async def _get(self, name: str) -> DomainRecord:
        try:
            return await self.store.get_domain(name=name)
        except store_errors.NotFound:
            raise not_exists(name) from None

    @staticmethod
    def _record(domain: domain_pb2.Domain) -> DomainRecord:
        return DomainRecord(
            domain_id=domain.id, name=domain.name, status=domain.status, data=domain.SerializeToString()
        )

    @staticmethod
    def _decode(record: DomainRecord) -> domain_pb2.Domain:
        domain = domain_pb2.Domain.FromString(record.data)
        domain.id, domain.name, domain.status = record.domain_id, record.name, record.status  # type: ignore[assignment]
        return domain

    @staticmethod
    def _apply_update(
        domain: domain_pb2.Domain, request: service_domain_pb2.UpdateDomainRequest, paths: set[str]
    ) -> None:
        """Change `domain` (a decoded copy) per the mask; on a BadRequest the caller writes nothing."""
        if "description" in paths:
            validate_text(request.description, "description", DESCRIPTION_MAX_LENGTH)
            domain.description = request.description
        if "owner_email" in paths:
            validate_text(request.owner_email, "owner_email", OWNER_EMAIL_MAX_LENGTH)
            domain.owner_email = request.owner_email
        if "data" in paths:
            merged = {**dict(domain.data), **dict(request.data)}
            validate_data(merged)
            domain.data.update(request.data)
        if "workflow_execution_retention_period" in paths:
            domain.workflow_execution_retention_period.CopyFrom(
                validate_retention(request.workflow_execution_retention_period)
            )
        if "bad_binaries" in paths:
            merge_bad_binaries(domain.bad_binaries, request.bad_binaries, _now_ns())
        if "delete_bad_binary" in paths:
            checksum = request.delete_bad_binary
            if checksum not in domain.bad_binaries.binaries:
                raise bad(f"delete_bad_binary: {checksum!r} is not a bad binary of domain {domain.name}.")
            del domain.bad_binaries.binaries[checksum]
        for kind in ("history", "visibility"):
            status_field, uri_field = f"{kind}_archival_status", f"{kind}_archival_uri"
            if status_field in paths:
                setattr(domain, status_field, validate_archival(getattr(request, status_field), status_field))
            if uri_field in paths:
                setattr(domain, uri_field, getattr(request, uri_field))
        if paths & {"active_cluster_name", "clusters", "active_clusters"}:
            validate_clusters(
                request.active_cluster_name if "active_cluster_name" in paths else "",
                list(request.clusters) if "clusters" in paths else [],
                "active_clusters" in paths and request.HasField("active_clusters"),
            )
        if "failover_timeout" in paths:
            raise bad(
                f"failover_timeout: graceful failover needs a second cluster; the only one is {CLUSTER_NAME!r}."
            )
