"""cassandra-driver under asyncio: statements run with execute_async, never blocking the loop.

The driver completes requests on its own I/O thread; `_bridge` hands each result (all
pages of it) to the event loop with `call_soon_threadsafe`. Statements are prepared
once per CQL text and cached. Driver errors become the typed storage errors:
timeouts, unreachable or overloaded nodes are `Unavailable` (the caller retries; a
conditional write whose outcome is unknown is reported so too — its conditions make a
retry safe), anything else a `StoreError` carrying Cassandra's message.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

from cassandra import (
    ConsistencyLevel,
    CoordinationFailure,
    OperationTimedOut,
    ReadTimeout,
    RequestExecutionException,
    WriteTimeout,
)
from cassandra import Unavailable as CassandraUnavailable
from cassandra.auth import PlainTextAuthProvider
from cassandra.cluster import (
    EXEC_PROFILE_DEFAULT,
    Cluster,
    ExecutionProfile,
    NoHostAvailable,
    ResponseFuture,
    Session,
)
from cassandra.connection import DefaultEndPoint
from cassandra.policies import DCAwareRoundRobinPolicy, TokenAwarePolicy
from cassandra.protocol import ServerError
from cassandra.query import BatchStatement, BatchType, PreparedStatement, Statement, dict_factory

from cadence_fast.persistence.errors import StoreError, Unavailable
from cadence_fast_cassandra.url import CassandraURL

log = logging.getLogger("cadence_fast.cassandra")

Row = dict[str, Any]

#: Errors meaning "the cluster cannot answer right now", not "the request is wrong".
_UNAVAILABLE: tuple[type[BaseException], ...] = (
    NoHostAvailable,
    OperationTimedOut,
    CassandraUnavailable,
    ReadTimeout,
    WriteTimeout,
    CoordinationFailure,
    ConnectionError,
    OSError,
)


def map_error(url: CassandraURL, e: BaseException) -> StoreError:
    """A driver error as the typed storage error."""
    if isinstance(e, StoreError):
        return e
    msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    if isinstance(e, _UNAVAILABLE) or (isinstance(e, ServerError) and "overloaded" in msg.lower()):
        return Unavailable(f"Cassandra at {url.redacted()} is unavailable: {msg}")
    if isinstance(e, RequestExecutionException):
        return Unavailable(f"Cassandra at {url.redacted()} could not complete the request: {msg}")
    return StoreError(f"Cassandra at {url.redacted()} rejected the call: {msg}")


def make_cluster(url: CassandraURL) -> Cluster:
    """A Cluster (not connected) with LOCAL_QUORUM reads/writes and LOCAL_SERIAL conditions."""
    profile = ExecutionProfile(
        load_balancing_policy=TokenAwarePolicy(DCAwareRoundRobinPolicy(local_dc=url.datacenter)),
        consistency_level=ConsistencyLevel.LOCAL_QUORUM,
        serial_consistency_level=ConsistencyLevel.LOCAL_SERIAL,
        request_timeout=url.timeout,
        row_factory=dict_factory,
    )
    ports = {port for _, port in url.hosts}
    contact_points: list[Any]
    if len(ports) == 1:
        contact_points = [host for host, _ in url.hosts]
    else:  # hosts on different ports (e.g. several local test nodes)
        contact_points = [DefaultEndPoint(host, port) for host, port in url.hosts]
    auth = None
    if url.username is not None:
        auth = PlainTextAuthProvider(username=url.username, password=url.password or "")
    return Cluster(
        contact_points=contact_points,
        port=url.hosts[0][1],
        auth_provider=auth,
        execution_profiles={EXEC_PROFILE_DEFAULT: profile},
        connect_timeout=url.connect_timeout,
        control_connection_timeout=url.connect_timeout,
    )


def _bridge(loop: asyncio.AbstractEventLoop, rf: ResponseFuture) -> asyncio.Future[list[Row]]:
    """An asyncio future of every row of a driver request (following result pages)."""
    fut: asyncio.Future[list[Row]] = loop.create_future()
    rows: list[Row] = []

    def resolve(result: list[Row] | None, error: BaseException | None) -> None:
        if fut.done():
            return
        if error is not None:
            fut.set_exception(error)
        else:
            fut.set_result(result or [])

    def on_page(page: Sequence[Row] | None) -> None:
        if page:
            rows.extend(page)
        if rf.has_more_pages:
            rf.start_fetching_next_page()  # this callback runs again with the next page
        else:
            loop.call_soon_threadsafe(resolve, rows, None)

    def on_error(exc: BaseException) -> None:
        loop.call_soon_threadsafe(resolve, None, exc)

    rf.add_callbacks(on_page, on_error)
    return fut


class Connection:
    """One connected session of a keyspace (or of none, for schema setup)."""

    def __init__(self, url: CassandraURL, cluster: Cluster, session: Session) -> None:
        self.url = url
        self.cluster = cluster
        self.session = session
        self._prepared: dict[str, PreparedStatement] = {}

    @classmethod
    async def connect(cls, url: CassandraURL, keyspace: str | None) -> Connection:
        cluster = make_cluster(url)
        try:
            session = await asyncio.to_thread(cluster.connect, keyspace)
        except BaseException as e:
            await asyncio.to_thread(cluster.shutdown)
            raise map_error(url, e) from None
        return cls(url, cluster, session)

    async def close(self) -> None:
        await asyncio.to_thread(self.cluster.shutdown)

    async def prepare(self, cql: str) -> PreparedStatement:
        ps = self._prepared.get(cql)
        if ps is None:
            try:
                # Preparing is a blocking round trip in the driver: off the loop, once per text.
                ps = await asyncio.to_thread(self.session.prepare, cql)
            except BaseException as e:
                raise map_error(self.url, e) from None
            self._prepared[cql] = ps
        return ps

    async def bound(self, cql: str, params: Sequence[Any], serial_read: bool = False) -> Statement:
        stmt = (await self.prepare(cql)).bind(tuple(params))
        if serial_read:
            # A Paxos read: sees every conditional write that has been decided.
            stmt.consistency_level = ConsistencyLevel.LOCAL_SERIAL
        return stmt

    async def run(self, stmt: Statement | str) -> list[Row]:
        loop = asyncio.get_running_loop()
        try:
            return await _bridge(loop, self.session.execute_async(stmt))
        except BaseException as e:
            if isinstance(e, asyncio.CancelledError):
                raise
            raise map_error(self.url, e) from None

    async def execute(self, cql: str, params: Sequence[Any] = (), *, serial_read: bool = False) -> list[Row]:
        return await self.run(await self.bound(cql, params, serial_read))

    async def execute_plain(self, cql: str) -> list[Row]:
        """An unprepared statement (DDL)."""
        return await self.run(cql)

    async def batch(
        self, statements: Sequence[tuple[str, Sequence[Any]]], *, logged: bool = True
    ) -> list[Row]:
        """One batch; for a conditional batch the first row's ``[applied]`` tells if it applied."""
        batch = BatchStatement(batch_type=BatchType.LOGGED if logged else BatchType.UNLOGGED)
        for cql, params in statements:
            batch.add(await self.prepare(cql), tuple(params))
        return await self.run(batch)


def applied(rows: list[Row]) -> bool:
    """Whether a conditional statement or batch applied."""
    return bool(rows) and bool(rows[0].get("[applied]", False))
