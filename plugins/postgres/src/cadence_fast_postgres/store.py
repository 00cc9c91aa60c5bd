"""The PostgreSQL adapter: psycopg 3 (async) over a connection pool.

URL: ``postgresql://user[:password]@host[:port]/database[?libpq options]`` (``postgres://``
too). Options of our own, stripped before libpq sees the URL: ``pool_size`` (max
connections, default 10) and ``pool_min`` (default 1).

Every write is one transaction run in pipeline mode: statements whose results the
program does not need (the writes) travel together, and the condition reads of a group
commit (shard lock, current rows, run rows of all its ops) are sent as one batch, so a
commit costs two round trips (the condition reads, then the writes with COMMIT) whatever
its size. The operations themselves (SQL, conditions, fencing) are shared with the MySQL
adapter in `cadence_fast.persistence.sqlcommon`.

Errors: a lost or refused connection, or a pool timeout, is `Unavailable` (the caller
retries; a commit whose COMMIT may or may not have landed is reported the same way, and
its conditions make a retry safe). Reads are retried once on a fresh connection first.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

import psycopg
from psycopg import AsyncRawCursor, sql
from psycopg import errors as pgerrors
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from cadence_fast.persistence import sqlcommon
from cadence_fast.persistence.errors import (
    AlreadyExists,
    ConditionFailed,
    SchemaError,
    StoreError,
    Unavailable,
)
from cadence_fast.persistence.records import CreateWorkflow, UpdateWorkflow
from cadence_fast.persistence.sqlcommon import (
    Exec,
    ExecCount,
    ExecMany,
    Fetch,
    FetchAll,
    Program,
    ProgramStore,
    redact_url,
)
from cadence_fast_postgres import schema

T = TypeVar("T")
log = logging.getLogger("cadence_fast.postgres")

_OUR_OPTIONS = ("pool_size", "pool_min")
#: Errors that mean "the database is not reachable right now", not "your write is wrong".
_UNAVAILABLE = (psycopg.OperationalError, PoolTimeout, pgerrors.AdminShutdown, pgerrors.CannotConnectNow)


def _split_url(url: str) -> tuple[str, dict[str, str]]:
    """(libpq URL, our options)."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    ours = {k: v for k, v in query if k in _OUR_OPTIONS}
    rest = [(k, v) for k, v in query if k not in _OUR_OPTIONS]
    scheme = "postgresql"
    if not any(k == "connect_timeout" for k, _ in rest):
        rest.append(("connect_timeout", "5"))
    # quote, not quote_plus: libpq reads "+" literally (options=-c%20x=y must stay a space).
    return urlunsplit((scheme, parts.netloc, parts.path, urlencode(rest, quote_via=quote), parts.fragment)), ours


def _database_of(url: str) -> str:
    name = urlsplit(url).path.lstrip("/")
    if not name:
        raise SchemaError(f"store URL {redact_url(url)} names no database (postgresql://user@host/DATABASE)")
    return name


class _NoDatabase(Exception):
    """The URL's database does not exist (yet)."""


class _Progress:
    """How far a transaction got: past `committing`, a lost connection leaves its outcome unknown."""

    __slots__ = ("committing",)

    def __init__(self) -> None:
        self.committing = False


@functools.lru_cache(maxsize=1024)
def _native(sql: str) -> str:
    """`%s` placeholders as PostgreSQL's own `$1, $2, ...`.

    Statements then go through psycopg's raw cursor, which sends them as they are:
    psycopg's own placeholder parsing is cached only for statements of up to 50
    parameters, so the multi-row INSERTs of a group commit would be parsed (in Python)
    on every call. The shared SQL uses no other `%` (checked here)."""
    parts = sql.split("%s")
    if any("%" in part for part in parts):
        raise ValueError(f"only %s placeholders are supported: {sql[:80]!r}")
    return "".join(f"{part}${i}" for i, part in enumerate(parts[:-1], 1)) + parts[-1]


async def _drive(
    conn: psycopg.AsyncConnection[Any], program: Program[T], pipeline: psycopg.AsyncPipeline | None = None
) -> T:
    """Run a program's statements on `conn` (in pipeline mode when `pipeline` is given)."""
    send: Any = None
    while True:
        try:
            stmt = program.send(send)
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]
        if isinstance(stmt, Fetch):
            cur = await AsyncRawCursor(conn).execute(_native(stmt.sql), stmt.params)
            send = await cur.fetchall()
        elif isinstance(stmt, FetchAll):
            # Send them all, then read: in pipeline mode that is one round trip.
            if pipeline is None:
                async with conn.pipeline():
                    cursors = [await AsyncRawCursor(conn).execute(_native(q.sql), q.params) for q in stmt.queries]
                    send = [await c.fetchall() for c in cursors]
            else:
                cursors = [await AsyncRawCursor(conn).execute(_native(q.sql), q.params) for q in stmt.queries]
                send = [await c.fetchall() for c in cursors]
        elif isinstance(stmt, Exec):
            await AsyncRawCursor(conn).execute(_native(stmt.sql), stmt.params)
            send = None
        elif isinstance(stmt, ExecMany):
            async with AsyncRawCursor(conn) as cur:
                await cur.executemany(_native(stmt.sql), stmt.rows)
            send = None
        elif isinstance(stmt, ExecCount):
            cur = await AsyncRawCursor(conn).execute(_native(stmt.sql), stmt.params)
            if pipeline is not None:  # the count arrives with the results: fetch them now
                await pipeline.sync()
            send = cur.rowcount
        else:  # pragma: no cover - programs yield only the kinds above
            raise TypeError(f"not a statement: {stmt!r}")


def _unavailable(url: str, e: BaseException) -> Unavailable:
    msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    return Unavailable(f"PostgreSQL at {redact_url(url)} is unavailable: {msg}")


def _store_error(url: str, e: psycopg.Error) -> StoreError:
    """Any other database error: typed, with PostgreSQL's message (e.g. a value too long, a NUL in text)."""
    msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    return StoreError(f"PostgreSQL at {redact_url(url)} rejected the call: {msg}")


def _op_error(url: str, e: psycopg.Error) -> StoreError:
    """The error of one op of a commit that the database refused (the op left no trace)."""
    if isinstance(e, pgerrors.UniqueViolation):
        return AlreadyExists(f"row already exists: {e.diag.message_detail or e}")
    if isinstance(e, psycopg.IntegrityError):
        return ConditionFailed(f"write rejected by PostgreSQL: {e}")
    return _store_error(url, e)


class PostgresStore(ProgramStore):
    schemes = ("postgresql", "postgres")
    schema_version_expected = schema.SCHEMA_VERSION
    auto_create_schema = False
    dialect = sqlcommon.POSTGRES

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self._conninfo, options = _split_url(url)
        try:
            self._pool_max = max(1, int(options.get("pool_size", "10")))
            self._pool_min = min(self._pool_max, max(0, int(options.get("pool_min", "1"))))
        except ValueError:
            raise ValueError(f"store URL {redact_url(url)}: pool_size and pool_min must be integers") from None
        self._pool: AsyncConnectionPool | None = None

    # --- lifecycle and schema -----------------------------------------------------------

    async def open(self, *, create_schema: bool = False) -> None:
        if create_schema:
            await self.setup_schema()
        else:
            sqlcommon.check_schema_version(await self.schema_version(), self.schema_version_expected, self.url)
        pool = AsyncConnectionPool(
            self._conninfo,
            min_size=self._pool_min,
            max_size=self._pool_max,
            kwargs={"autocommit": True},
            timeout=5.0,
            open=False,
            name="cadence-fast",
        )
        try:
            await pool.open(wait=True, timeout=10.0)
        except PoolTimeout as e:
            await pool.close()
            raise _unavailable(self.url, e) from None
        self._pool = pool

    async def close(self) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await pool.close()

    async def _connect(self, conninfo: str | None = None) -> psycopg.AsyncConnection[Any]:
        try:
            return await psycopg.AsyncConnection.connect(conninfo or self._conninfo, autocommit=True)
        except psycopg.OperationalError as e:
            # libpq reports a missing database as a connection failure with this text.
            if "does not exist" in str(e) and "database" in str(e):
                raise _NoDatabase(str(e)) from None
            raise _unavailable(self.url, e) from None

    async def schema_version(self) -> int | None:
        """Works on an open or unopened store (connects on its own then)."""
        try:
            conn = await self._connect()
        except _NoDatabase:
            return None  # no database, so no schema
        async with conn:
            cur = await conn.execute("SELECT to_regclass('schema_version') IS NOT NULL")
            row = await cur.fetchone()
            if not row or not row[0]:
                return None
            return await _drive(conn, sqlcommon.read_schema_version())

    async def _create_database(self) -> None:
        """CREATE DATABASE through the maintenance database, if the user may."""
        name = _database_of(self.url)
        parts = urlsplit(self._conninfo)
        admin = urlunsplit((parts.scheme, parts.netloc, "/postgres", parts.query, ""))
        conn = await self._connect(admin)
        async with conn:
            try:
                await conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
                log.info("created database %s", name)
            except pgerrors.DuplicateDatabase:
                pass  # created concurrently
            except pgerrors.InsufficientPrivilege as e:
                raise SchemaError(
                    f"database {name!r} does not exist and this user may not create it ({e}); "
                    "create it, then run `cadence-fast schema setup` again"
                ) from None

    async def setup_schema(self) -> int:
        """Create the database if needed, then create or migrate the schema in one transaction."""
        try:
            conn = await self._connect()
        except _NoDatabase:
            await self._create_database()
            conn = await self._connect()
        async with conn:
            try:
                async with conn.transaction():
                    # One setup at a time (two servers or two operators racing).
                    await conn.execute("SELECT pg_advisory_xact_lock(7833001)")
                    cur = await conn.execute("SELECT to_regclass('schema_version') IS NOT NULL")
                    row = await cur.fetchone()
                    found = await _drive(conn, sqlcommon.read_schema_version()) if row and row[0] else None
                    if found is not None and found > schema.SCHEMA_VERSION:
                        sqlcommon.check_schema_version(found, schema.SCHEMA_VERSION, self.url)
                    start = found or 0
                    for version in range(start + 1, schema.SCHEMA_VERSION + 1):
                        for statement in schema.MIGRATIONS[version]:
                            await conn.execute(statement)
                    if start < schema.SCHEMA_VERSION:
                        await conn.execute(
                            "INSERT INTO schema_version (id, version, updated_at) VALUES (1, %s, %s)"
                            " ON CONFLICT (id) DO UPDATE SET version = EXCLUDED.version,"
                            " updated_at = EXCLUDED.updated_at",
                            (schema.SCHEMA_VERSION, time.time_ns()),
                        )
            except psycopg.OperationalError as e:
                raise _unavailable(self.url, e) from None
        return schema.SCHEMA_VERSION

    # --- the driver ---------------------------------------------------------------------

    def _require_pool(self) -> AsyncConnectionPool:
        if self._pool is None:
            raise StoreError("store is not open (call open() first)")
        return self._pool

    async def _read(self, make: Callable[[], Program[T]]) -> T:
        pool = self._require_pool()
        for attempt in (1, 2):
            try:
                async with pool.connection() as conn:
                    return await _drive(conn, make())
            except PoolTimeout as e:
                raise _unavailable(self.url, e) from None
            except _UNAVAILABLE as e:
                # A pooled connection that died with the server: replace them, retry once.
                if attempt == 2:
                    raise _unavailable(self.url, e) from None
                await pool.check()
            except psycopg.Error as e:
                raise _store_error(self.url, e) from None
        raise AssertionError("unreachable")

    async def _transaction(
        self, body: Callable[[psycopg.AsyncConnection[Any], psycopg.AsyncPipeline, _Progress], Awaitable[T]]
    ) -> T:
        """Run `body` on a pooled connection in pipeline mode, mapping driver errors.

        A connection found dead before the body reached its COMMIT (the usual case after a
        database restart: the pool still holds connections to the old server) is replaced
        and the body run once more; that is safe because nothing of it can have committed.
        """
        pool = self._require_pool()
        for attempt in (1, 2):
            progress = _Progress()
            try:
                async with pool.connection() as conn, conn.pipeline() as pipeline:
                    return await body(conn, pipeline, progress)
            except PoolTimeout as e:
                raise _unavailable(self.url, e) from None
            except _UNAVAILABLE as e:
                if progress.committing or attempt == 2:
                    raise _unavailable(self.url, e) from None
                await pool.check()  # drop the other connections that died with the server
            except pgerrors.UniqueViolation as e:
                raise AlreadyExists(f"row already exists: {e.diag.message_detail or e}") from None
            except psycopg.Error as e:
                raise _store_error(self.url, e) from None
        raise AssertionError("unreachable")

    async def _write(self, make: Callable[[], Program[T]]) -> T:
        async def body(conn: psycopg.AsyncConnection[Any], pipeline: psycopg.AsyncPipeline, progress: _Progress) -> T:
            async with conn.transaction():
                result = await _drive(conn, make(), pipeline)
                progress.committing = True
            return result

        return await self._transaction(body)

    async def commit(
        self, shard_id: int, range_id: int, ops: Sequence[CreateWorkflow | UpdateWorkflow]
    ) -> list[BaseException | None]:
        async def body(
            conn: psycopg.AsyncConnection[Any], pipeline: psycopg.AsyncPipeline, progress: _Progress
        ) -> list[BaseException | None]:
            # The whole group in one go: condition reads (with the shard lock) in one round
            # trip, then every write and the COMMIT in a second one. Ops whose conditions
            # fail are left out by the program, so no savepoints are needed.
            try:
                async with conn.transaction():
                    program = sqlcommon.commit_ops(self.dialect, shard_id, ops, range_id)
                    results = await _drive(conn, program, pipeline)
                    progress.committing = True
                return results
            except psycopg.OperationalError:
                raise
            except psycopg.Error as e:
                # The database refused a row (a NUL in a text, a duplicate task id, ...):
                # nothing was written. One op: that is its error. Several: find whose.
                if len(ops) == 1:
                    return [_op_error(self.url, e)]
            progress.committing = False
            return await self._commit_one_by_one(conn, pipeline, progress, shard_id, range_id, ops)

        return await self._transaction(body)

    async def _commit_one_by_one(
        self,
        conn: psycopg.AsyncConnection[Any],
        pipeline: psycopg.AsyncPipeline,
        progress: _Progress,
        shard_id: int,
        range_id: int,
        ops: Sequence[CreateWorkflow | UpdateWorkflow],
    ) -> list[BaseException | None]:
        """The slow path of a group the database refused: each op in its own SAVEPOINT, so a
        refused op fails alone and the others commit (a round trip per op)."""
        results: list[BaseException | None] = []
        async with conn.transaction():
            await _drive(conn, sqlcommon.lock_shard(shard_id, range_id), pipeline)
            for op in ops:
                try:
                    async with conn.transaction():  # SAVEPOINT
                        [result] = await _drive(conn, sqlcommon.commit_ops(self.dialect, shard_id, [op], None), pipeline)
                        await pipeline.sync()  # surface this op's errors inside its savepoint
                    results.append(result)
                except psycopg.OperationalError:
                    raise
                except psycopg.Error as e:
                    results.append(_op_error(self.url, e))
            progress.committing = True
        return results
