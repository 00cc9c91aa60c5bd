"""The MySQL / MariaDB adapter: PyMySQL, run off the event loop.

URL: ``mysql://user[:password]@host[:port]/database[?pool_size=N&unix_socket=/path]``
(``mysql+pymysql://`` too). PyMySQL is blocking, so every operation runs as a whole in
one of `pool_size` worker threads (default 8), each holding its own connection: one
thread hop per operation, however many statements it has. The connections speak
multi-statements, so the statements of an operation travel in batches (`_run`): a group
commit is one round trip for its condition reads, one for its writes, and the COMMIT. The operations themselves
(SQL, conditions, fencing) are shared with the PostgreSQL adapter in
`cadence_fast.persistence.sqlcommon`; the SQL is valid on MySQL 8 and MariaDB 10.11.

Sessions run at READ COMMITTED (as the PostgreSQL adapter does by default): with the
shard row locked, every condition check reads the latest committed rows. The
connection asks for "found rows", so an UPDATE's count means rows matched, not changed.

Errors: connection loss or refusal is `Unavailable` (the connection is dropped and
reopened on next use); a deadlock or lock wait timeout rolls the whole transaction back,
so the operation is retried a few times before it is reported as `Unavailable`.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar
from urllib.parse import parse_qsl, unquote, urlsplit

import pymysql
from pymysql.constants import CLIENT

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
    run_blocking,
)
from cadence_fast_mysql import schema

T = TypeVar("T")
log = logging.getLogger("cadence_fast.mysql")

ER_DUP_ENTRY = 1062
ER_BAD_DB_ERROR = 1049
ER_DBACCESS_DENIED = 1044
ER_LOCK_WAIT_TIMEOUT = 1205
ER_LOCK_DEADLOCK = 1213
_RETRY_WHOLE_TRANSACTION = (ER_LOCK_WAIT_TIMEOUT, ER_LOCK_DEADLOCK)
#: Client errors: server gone away, lost connection during query, server shutting down.
_CONNECTION_LOST = (2006, 2013, 1053, 4031)
_ATTEMPTS = 3


class _NoDatabase(Exception):
    """The URL's database does not exist (yet)."""


def _parse_url(url: str) -> dict[str, Any]:
    parts = urlsplit(url)
    options = dict(parse_qsl(parts.query))
    params: dict[str, Any] = {
        "host": parts.hostname or "127.0.0.1",
        "port": parts.port or 3306,
        "user": unquote(parts.username) if parts.username else "root",
        "password": unquote(parts.password) if parts.password else "",
        "database": parts.path.lstrip("/") or None,
    }
    try:
        params["pool_size"] = max(1, int(options.pop("pool_size", "8")))
    except ValueError:
        raise ValueError(f"store URL {redact_url(url)}: pool_size must be an integer") from None
    if "unix_socket" in options:
        params["unix_socket"] = options.pop("unix_socket")
    if options:
        raise ValueError(f"unknown option(s) in MySQL store URL: {', '.join(sorted(options))}")
    if not params["database"]:
        raise ValueError(f"store URL {redact_url(url)} names no database (mysql://user@host/DATABASE)")
    return params


def _code(e: BaseException) -> int:
    return int(e.args[0]) if e.args and isinstance(e.args[0], int) else 0


def _first_line(e: BaseException) -> str:
    text = e.args[1] if len(e.args) > 1 else str(e)
    return str(text).strip().splitlines()[0] if str(text).strip() else type(e).__name__


class MySQLStore(ProgramStore):
    schemes = ("mysql",)
    schema_version_expected = schema.SCHEMA_VERSION
    auto_create_schema = False
    dialect = sqlcommon.MYSQL

    def __init__(self, url: str) -> None:
        super().__init__(url)
        params = _parse_url(url)
        self._pool_size: int = params.pop("pool_size")
        self._database: str = params.pop("database")
        self._params = params
        self._executor: ThreadPoolExecutor | None = None
        self._local = threading.local()
        self._connections: list[pymysql.connections.Connection] = []
        self._lock = threading.Lock()

    # --- connections (used in worker threads only) --------------------------------------

    def _new_connection(self, database: str | None) -> pymysql.connections.Connection:
        try:
            return pymysql.connect(
                **self._params,
                database=database,
                charset="utf8mb4",
                autocommit=True,
                # MULTI_STATEMENTS: _run sends a program's statements together (values are
                # always escaped by PyMySQL, never spliced into SQL by us).
                client_flag=CLIENT.FOUND_ROWS | CLIENT.MULTI_STATEMENTS,
                connect_timeout=5,
                init_command="SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED",
                # Strict: a value too long for its column is an error, never silently truncated.
                sql_mode="STRICT_ALL_TABLES,NO_ENGINE_SUBSTITUTION",
            )
        except pymysql.err.OperationalError as e:
            if _code(e) == ER_BAD_DB_ERROR:
                raise _NoDatabase(_first_line(e)) from None
            raise

    def _connection(self) -> pymysql.connections.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._new_connection(self._database)
            self._local.conn = conn
            with self._lock:
                self._connections.append(conn)
        return conn

    def _drop_connection(self) -> None:
        conn = getattr(self._local, "conn", None)
        self._local.conn = None
        if conn is not None:
            with self._lock:
                if conn in self._connections:
                    self._connections.remove(conn)
            try:
                conn.close()
            except Exception:  # noqa: BLE001 - it is already broken; we only release it
                pass

    def _unavailable(self, e: BaseException) -> Unavailable:
        return Unavailable(f"MySQL at {redact_url(self.url)} is unavailable: {_first_line(e)}")

    def _in_thread(self, work: Callable[[pymysql.connections.Connection], T]) -> T:
        """Run `work` on this thread's connection, mapping driver errors (worker thread)."""
        for attempt in range(1, _ATTEMPTS + 1):
            self._local.committing = False
            try:
                return work(self._connection())
            except _NoDatabase as e:
                raise SchemaError(
                    f"{e}; create it with `cadence-fast schema setup --store {redact_url(self.url)}`"
                ) from None
            except pymysql.err.IntegrityError as e:
                if _code(e) == ER_DUP_ENTRY:
                    raise AlreadyExists(f"row already exists: {_first_line(e)}") from None
                raise ConditionFailed(f"write rejected by MySQL: {_first_line(e)}") from None
            except pymysql.err.OperationalError as e:
                if _code(e) in _RETRY_WHOLE_TRANSACTION:
                    if attempt < _ATTEMPTS:
                        continue  # the server rolled the transaction back whole: safe to run again
                    raise self._unavailable(e) from None
                self._drop_connection()
                if not self._local.committing and attempt == 1 and _code(e) in _CONNECTION_LOST:
                    continue  # a connection that died idle (server restart): nothing was committed
                raise self._unavailable(e) from None
            except (pymysql.err.InterfaceError, OSError) as e:
                self._drop_connection()
                if not self._local.committing and attempt == 1:
                    continue
                raise self._unavailable(e) from None
            except pymysql.err.MySQLError as e:
                # Anything else (a value too long for its column, ...): typed, with MySQL's message.
                raise StoreError(f"MySQL at {redact_url(self.url)} rejected the call: {_first_line(e)}") from None
        raise AssertionError("unreachable")

    async def _call(self, work: Callable[[pymysql.connections.Connection], T]) -> T:
        if self._executor is None:
            raise StoreError("store is not open (call open() first)")
        return await asyncio.get_running_loop().run_in_executor(self._executor, self._in_thread, work)

    # --- lifecycle and schema -----------------------------------------------------------

    async def open(self, *, create_schema: bool = False) -> None:
        if create_schema:
            await self.setup_schema()
        else:
            sqlcommon.check_schema_version(await self.schema_version(), self.schema_version_expected, self.url)
        self._executor = ThreadPoolExecutor(max_workers=self._pool_size, thread_name_prefix="cadence-fast-mysql")

    async def close(self) -> None:
        executor, self._executor = self._executor, None
        if executor is not None:
            await asyncio.get_running_loop().run_in_executor(None, executor.shutdown, True)
        with self._lock:
            connections, self._connections = self._connections, []
        for conn in connections:
            try:
                conn.close()
            except Exception:  # noqa: BLE001 - closing a dead connection
                pass

    def _schema_version_blocking(self) -> int | None:
        try:
            conn = self._new_connection(self._database)
        except _NoDatabase:
            return None
        except pymysql.err.MySQLError as e:
            raise self._unavailable(e) from None
        try:
            with conn.cursor() as cur:
                cur.execute(
                    "SELECT COUNT(*) FROM information_schema.tables"
                    " WHERE table_schema = DATABASE() AND table_name = 'schema_version'"
                )
                if not cur.fetchone()[0]:
                    return None
                return run_blocking(cur, sqlcommon.read_schema_version())
        finally:
            conn.close()

    async def schema_version(self) -> int | None:
        """Works on an open or unopened store (connects on its own)."""
        return await asyncio.to_thread(self._schema_version_blocking)

    def _setup_blocking(self) -> int:
        try:
            conn = self._new_connection(self._database)
        except _NoDatabase:
            admin = self._new_connection(None)
            try:
                with admin.cursor() as cur:
                    cur.execute(
                        f"CREATE DATABASE IF NOT EXISTS `{self._database.replace('`', '``')}`"
                        " CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"
                    )
                log.info("created database %s", self._database)
            except pymysql.err.OperationalError as e:
                if _code(e) == ER_DBACCESS_DENIED:
                    raise SchemaError(
                        f"database {self._database!r} does not exist and this user may not create it "
                        f"({_first_line(e)}); create it, then run `cadence-fast schema setup` again"
                    ) from None
                raise
            finally:
                admin.close()
            conn = self._new_connection(self._database)
        try:
            with conn.cursor() as cur:
                # One setup at a time (two servers or two operators racing).
                cur.execute("SELECT GET_LOCK('cadence_fast_schema_setup', 60)")
                try:
                    cur.execute(
                        "SELECT COUNT(*) FROM information_schema.tables"
                        " WHERE table_schema = DATABASE() AND table_name = 'schema_version'"
                    )
                    found = run_blocking(cur, sqlcommon.read_schema_version()) if cur.fetchone()[0] else None
                    if found is not None and found > schema.SCHEMA_VERSION:
                        sqlcommon.check_schema_version(found, schema.SCHEMA_VERSION, self.url)
                    start = found or 0
                    for version in range(start + 1, schema.SCHEMA_VERSION + 1):
                        for statement in schema.MIGRATIONS[version]:
                            cur.execute(statement)
                    if start < schema.SCHEMA_VERSION:
                        cur.execute(
                            "INSERT INTO schema_version (id, version, updated_at) VALUES (1, %s, %s)"
                            " ON DUPLICATE KEY UPDATE version = VALUES(version), updated_at = VALUES(updated_at)",
                            (schema.SCHEMA_VERSION, time.time_ns()),
                        )
                finally:
                    cur.execute("SELECT RELEASE_LOCK('cadence_fast_schema_setup')")
        finally:
            conn.close()
        return schema.SCHEMA_VERSION

    async def setup_schema(self) -> int:
        """Create the database if needed (and allowed), then create or migrate the schema."""
        try:
            return await asyncio.to_thread(self._setup_blocking)
        except pymysql.err.MySQLError as e:
            raise self._unavailable(e) from None

    # --- the driver ---------------------------------------------------------------------

    async def _read(self, make: Callable[[], Program[T]]) -> T:
        def work(conn: pymysql.connections.Connection) -> T:
            with conn.cursor() as cur:
                return _run(cur, make())

        return await self._call(work)

    async def _write(self, make: Callable[[], Program[T]]) -> T:
        def work(conn: pymysql.connections.Connection) -> T:
            conn.begin()
            try:
                with conn.cursor() as cur:
                    result = _run(cur, make())
                self._local.committing = True  # from here a lost connection leaves the outcome unknown
                conn.commit()
                return result
            except BaseException:
                _rollback(conn)
                raise

        return await self._call(work)

    async def commit(
        self, shard_id: int, range_id: int, ops: Sequence[CreateWorkflow | UpdateWorkflow]
    ) -> list[BaseException | None]:
        def work(conn: pymysql.connections.Connection) -> list[BaseException | None]:
            conn.begin()
            try:
                # The whole group in one go: the condition reads (with the shard lock), then
                # the writes grouped by table. Ops whose conditions fail are left out by the
                # program, so no savepoints are needed.
                with conn.cursor() as cur:
                    results = _run(cur, sqlcommon.commit_ops(self.dialect, shard_id, ops, range_id))
                self._local.committing = True  # from here a lost connection leaves the outcome unknown
                conn.commit()
                return results
            except _OP_ERRORS as e:
                # The database refused a row (a value too long, ...): nothing is written. One
                # op: that is its error. Several: find whose, one op at a time.
                _rollback(conn)
                if len(ops) == 1:
                    return [_op_error(self.url, e)]
            except BaseException:
                _rollback(conn)
                raise
            return self._commit_one_by_one(conn, shard_id, range_id, ops)

        return await self._call(work)

    def _commit_one_by_one(
        self,
        conn: pymysql.connections.Connection,
        shard_id: int,
        range_id: int,
        ops: Sequence[CreateWorkflow | UpdateWorkflow],
    ) -> list[BaseException | None]:
        """The slow path of a group the database refused: each op in its own SAVEPOINT, so a
        refused op fails alone and the others commit."""
        results: list[BaseException | None] = []
        self._local.committing = False
        conn.begin()
        try:
            with conn.cursor() as cur:
                _run(cur, sqlcommon.lock_shard(shard_id, range_id))
                for op in ops:
                    cur.execute("SAVEPOINT cadence_op")
                    try:
                        [result] = _run(cur, sqlcommon.commit_ops(self.dialect, shard_id, [op], None))
                        results.append(result)
                    except _OP_ERRORS as e:
                        cur.execute("ROLLBACK TO SAVEPOINT cadence_op")
                        results.append(_op_error(self.url, e))
            self._local.committing = True
            conn.commit()
            return results
        except BaseException:
            _rollback(conn)
            raise


#: Statements batched into one multi-statement packet stop growing past this size (well
#: under max_allowed_packet: 16 MB on MariaDB, 4 MB on old MySQL); a bigger one goes alone.
_BATCH_BYTES = 1 << 20


def _run(cur: pymysql.cursors.Cursor, program: Program[T]) -> T:
    """Drive a program on a PyMySQL cursor, a round trip per batch rather than per statement.

    The connection speaks multi-statements: the queries of a FetchAll go in one packet, and
    writes whose result the program does not need (Exec) are held back and sent with the
    next statement that needs an answer, or when the program ends. So a group commit is
    one round trip for its condition reads and one for all its writes (then COMMIT)."""
    held: list[str] = []
    held_bytes = 0
    send: Any = None
    try:
        while True:
            stmt = program.send(send)
            if isinstance(stmt, Exec):
                text = cur.mogrify(stmt.sql, stmt.params)
                if held and held_bytes + len(text) > _BATCH_BYTES:
                    _batch(cur, held, [])
                    held_bytes = 0
                held.append(text)
                held_bytes += len(text)
                send = None
            elif isinstance(stmt, Fetch):
                send = _batch(cur, held, [cur.mogrify(stmt.sql, stmt.params)])[0]
                held_bytes = 0
            elif isinstance(stmt, FetchAll):
                send = _batch(cur, held, [cur.mogrify(q.sql, q.params) for q in stmt.queries])
                held_bytes = 0
            else:
                _batch(cur, held, [])
                held_bytes = 0
                if isinstance(stmt, ExecMany):
                    cur.executemany(stmt.sql, stmt.rows)
                    send = None
                elif isinstance(stmt, ExecCount):
                    cur.execute(stmt.sql, stmt.params)
                    send = cur.rowcount
                else:  # pragma: no cover - programs yield only the kinds above
                    raise TypeError(f"not a statement: {stmt!r}")
    except StopIteration as done:
        _batch(cur, held, [])
        return done.value  # type: ignore[no-any-return]


def _batch(cur: pymysql.cursors.Cursor, held: list[str], queries: list[str]) -> list[Any]:
    """Send the held writes and then `queries` in one packet; return the queries' rows.

    Every result is read, in order: the first failing statement raises its error here (the
    server runs none after it), so an error still belongs to the program that caused it."""
    statements = held + queries
    held.clear()
    if not statements:
        return []
    cur.execute(";\n".join(statements))  # no args: PyMySQL sends the text as it is
    first_query = len(statements) - len(queries)
    rows: list[Any] = []
    for i in range(len(statements)):
        if i:
            cur.nextset()
        if i >= first_query:
            rows.append(cur.fetchall())
    return rows


#: What the database says about one op's rows (the op is rolled back alone), as opposed to
#: the connection or the server failing (OperationalError / InterfaceError: the whole call).
_OP_ERRORS = (pymysql.err.IntegrityError, pymysql.err.DataError, pymysql.err.ProgrammingError)


def _op_error(url: str, e: pymysql.err.MySQLError) -> Exception:
    if _code(e) == ER_DUP_ENTRY:
        return AlreadyExists(f"row already exists: {_first_line(e)}")
    if isinstance(e, pymysql.err.IntegrityError):
        return ConditionFailed(f"write rejected by MySQL: {_first_line(e)}")
    return StoreError(f"MySQL at {redact_url(url)} rejected the call: {_first_line(e)}")


def _rollback(conn: pymysql.connections.Connection) -> None:
    try:
        conn.rollback()
    except pymysql.err.MySQLError:
        pass  # the connection is gone; the server rolls back on its own
