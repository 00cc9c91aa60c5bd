"""What the server-database SQL adapters (PostgreSQL, MySQL) share: the transaction programs.

The two adapters differ in their drivers (psycopg 3 is async and pipelines statements;
PyMySQL is blocking and runs in worker threads) but not in what a write does. So each
operation is written once here as a *program*: a generator that yields statements
(`Fetch`, `FetchAll`, `Exec`, `ExecMany`, `ExecCount`) and receives their results. Each adapter has
a tiny driver that runs a program on one of its connections, inside one transaction.
A program raises the typed storage errors itself; the driver maps only driver errors.

Write pattern (server-brief §3, Cadence's "multi-row single-shard transaction"):
every workflow write first locks its shard row (`SELECT range_id ... FOR UPDATE`); a
range mismatch means another host owns the shard now (ShardOwnershipLost, nothing
written). The lock also serializes the writers of one shard, so the conditions of a
group commit's ops (current-run rows, `next_event_id`s) are read in ONE batch and
checked *before* anything is written: a failing op is simply not written, without
relying on database errors or savepoints, and the passing ops' rows go grouped by table
(`commit_ops`), so a group of N ops costs a few statements more than one op, not N times
as many. Only when the database itself refuses a row (a value too long, a duplicate task
id) do the drivers run the group again op by op, each in a SAVEPOINT, so the refusal
costs only its op.

Schema (both dialects, same tables and columns; types differ, see each plugin's
`schema.py`): schema_version, domain_metadata, domains, shards, executions,
current_executions, execution_maps (one row per mutable-state map entry, so an update
writes only what changed), history_batches (one row per committed event batch),
transfer_tasks, timer_tasks, task_lists, tasks, executions_visibility.
"""

from __future__ import annotations

import abc
import functools
import json
import struct
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar
from urllib.parse import urlsplit, urlunsplit

from cadence_fast.errors import BadRequestError
from cadence_fast.persistence.errors import (
    AlreadyExists,
    ConditionFailed,
    NotFound,
    SchemaError,
    ShardOwnershipLost,
)
from cadence_fast.persistence.records import (
    CreateMode,
    CreateWorkflow,
    CurrentExecutionRecord,
    DomainRecord,
    ExecutionRecord,
    HistoryBatch,
    ShardRecord,
    TaskListRecord,
    TaskListTask,
    TimerTask,
    TransferTask,
    UpdateWorkflow,
    VisibilityRecord,
    WorkflowState,
)
from cadence_fast.persistence.sqlvisibility import compile_query
from cadence_fast.persistence.store import Store
from cadence_fast.persistence.visibility_query import VisibilityQuery

T = TypeVar("T")


# --- statements a program yields ---------------------------------------------------------


@dataclass(slots=True)
class Fetch:
    """A query whose rows the program needs (a round trip)."""

    sql: str
    params: Sequence[Any] = ()


@dataclass(slots=True)
class FetchAll:
    """Several queries sent together (one round trip where the driver pipelines them);
    the program receives one row list per query. They run in order on the server."""

    queries: Sequence[Fetch]


@dataclass(slots=True)
class Exec:
    """A write whose result the program does not need (pipelined where the driver can)."""

    sql: str
    params: Sequence[Any] = ()


@dataclass(slots=True)
class ExecMany:
    """The same write for many parameter rows."""

    sql: str
    rows: Sequence[Sequence[Any]]


@dataclass(slots=True)
class ExecCount:
    """A write whose affected-row count the program needs (rows *matched*, on MySQL too)."""

    sql: str
    params: Sequence[Any] = ()


Stmt = Fetch | FetchAll | Exec | ExecMany | ExecCount
Program = Generator[Stmt, Any, T]


# --- the dialect differences -----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Dialect:
    name: str  # "postgres" | "mysql" (also the sqlvisibility dialect name)

    def upsert(self, table: str, cols: Sequence[str], key: Sequence[str]) -> str:
        """INSERT that replaces the non-key columns of an existing row with the same key."""
        values = ", ".join(["%s"] * len(cols))
        rest = [c for c in cols if c not in key]
        head = f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({values})"
        if self.name == "postgres":
            sets = ", ".join(f"{c} = EXCLUDED.{c}" for c in rest)
            return f"{head} ON CONFLICT ({', '.join(key)}) DO UPDATE SET {sets}"
        # VALUES(col) is deprecated on MySQL 8.0.20+ (a warning) but it is the one form
        # both MySQL 8 and MariaDB accept; the `AS new` alias is MySQL-only.
        sets = ", ".join(f"{c} = VALUES({c})" for c in rest)
        return f"{head} ON DUPLICATE KEY UPDATE {sets}"

    def insert_or_bump(self, table: str, cols: Sequence[str], key: Sequence[str], counter: str) -> str:
        """INSERT, or add one to `counter` of the existing row: atomic even without a prior row lock."""
        values = ", ".join(["%s"] * len(cols))
        head = f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({values})"
        if self.name == "postgres":
            return f"{head} ON CONFLICT ({', '.join(key)}) DO UPDATE SET {counter} = {table}.{counter} + 1"
        return f"{head} ON DUPLICATE KEY UPDATE {counter} = {counter} + 1"

    @property
    def share_lock(self) -> str:
        """Row lock that waits for in-flight writers and keeps new ones out until the reader's
        transaction ends (MariaDB has no FOR SHARE; MySQL 8 accepts both spellings)."""
        return "FOR SHARE" if self.name == "postgres" else "LOCK IN SHARE MODE"


POSTGRES = Dialect("postgres")
MYSQL = Dialect("mysql")

# --- page tokens (opaque to callers) ---------------------------------------------------


def encode_int_token(value: int) -> bytes:
    return struct.pack(">q", value)


def decode_int_token(token: bytes | None, what: str) -> int | None:
    if not token:
        return None
    if len(token) != 8:
        raise BadRequestError(f"next_page_token is not a valid {what} page token")
    return int(struct.unpack(">q", token)[0])


def encode_str_token(value: str) -> bytes:
    return b"s" + value.encode("utf-8")


def decode_str_token(token: bytes | None, what: str) -> str | None:
    if not token:
        return None
    try:
        if token[:1] != b"s":
            raise ValueError
        return token[1:].decode("utf-8")
    except ValueError:
        raise BadRequestError(f"next_page_token is not a valid {what} page token") from None


# --- schema version ---------------------------------------------------------------------


def read_schema_version() -> Program[int | None]:
    rows = yield Fetch("SELECT version FROM schema_version WHERE id = 1")
    return int(rows[0][0]) if rows else None


# --- domains ----------------------------------------------------------------------------

DOMAIN_COLS = "domain_id, name, status, data, notification_version"


def _domain(row: Sequence[Any]) -> DomainRecord:
    return DomainRecord(
        domain_id=row[0], name=row[1], status=int(row[2]), data=bytes(row[3]), notification_version=int(row[4])
    )


def _bump_metadata_version() -> Program[int]:
    # The FOR UPDATE also serializes domain writers, so name/id checks below are race-free.
    rows = yield Fetch("SELECT notification_version FROM domain_metadata WHERE id = 1 FOR UPDATE")
    version = (int(rows[0][0]) if rows else 0) + 1
    yield Exec("UPDATE domain_metadata SET notification_version = %s WHERE id = 1", (version,))
    return version


def create_domain(d: DomainRecord) -> Program[int]:
    version = yield from _bump_metadata_version()
    rows = yield Fetch("SELECT domain_id, name FROM domains WHERE domain_id = %s OR name = %s", (d.domain_id, d.name))
    for row in rows:
        what = f"id {d.domain_id!r}" if row[0] == d.domain_id else f"name {d.name!r}"
        raise AlreadyExists(f"domain {what} already exists")
    yield Exec(
        f"INSERT INTO domains ({DOMAIN_COLS}) VALUES (%s, %s, %s, %s, %s)",
        (d.domain_id, d.name, d.status, d.data, version),
    )
    d.notification_version = version
    return version


def get_domain(domain_id: str | None, name: str | None) -> Program[DomainRecord]:
    if domain_id is not None:
        rows = yield Fetch(f"SELECT {DOMAIN_COLS} FROM domains WHERE domain_id = %s", (domain_id,))
        what = f"id {domain_id!r}"
    elif name is not None:
        rows = yield Fetch(f"SELECT {DOMAIN_COLS} FROM domains WHERE name = %s", (name,))
        what = f"name {name!r}"
    else:
        raise ValueError("get_domain needs domain_id or name")
    if not rows:
        raise NotFound(f"domain {what} not found")
    return _domain(rows[0])


def update_domain(d: DomainRecord) -> Program[int]:
    version = yield from _bump_metadata_version()
    count = yield ExecCount(
        "UPDATE domains SET status = %s, data = %s, notification_version = %s WHERE domain_id = %s",
        (d.status, d.data, version, d.domain_id),
    )
    if not count:
        raise NotFound(f"domain id {d.domain_id!r} not found")
    d.notification_version = version
    return version


def delete_domain(domain_id: str) -> Program[None]:
    yield from _bump_metadata_version()
    count = yield ExecCount("DELETE FROM domains WHERE domain_id = %s", (domain_id,))
    if not count:
        raise NotFound(f"domain id {domain_id!r} not found")


def list_domains(page_size: int, token: bytes | None) -> Program[tuple[list[DomainRecord], bytes | None]]:
    after = decode_str_token(token, "list_domains")
    limit = page_size if page_size > 0 else 1_000_000
    if after is None:
        rows = yield Fetch(f"SELECT {DOMAIN_COLS} FROM domains ORDER BY name LIMIT %s", (limit + 1,))
    else:
        rows = yield Fetch(
            f"SELECT {DOMAIN_COLS} FROM domains WHERE name > %s ORDER BY name LIMIT %s", (after, limit + 1)
        )
    domains = [_domain(r) for r in rows[:limit]]
    return domains, (encode_str_token(domains[-1].name) if len(rows) > limit else None)


def get_metadata_version() -> Program[int]:
    rows = yield Fetch("SELECT notification_version FROM domain_metadata WHERE id = 1")
    return int(rows[0][0]) if rows else 0


# --- shards -----------------------------------------------------------------------------

SHARD_COLS = "shard_id, range_id, owner, transfer_ack_level, timer_ack_level, data, updated_at"


def _shard(row: Sequence[Any]) -> ShardRecord:
    return ShardRecord(
        shard_id=int(row[0]),
        range_id=int(row[1]),
        owner=row[2],
        transfer_ack_level=int(row[3]),
        timer_ack_level=int(row[4]),
        data=bytes(row[5]),
        updated_at=int(row[6]),
    )


def get_or_create_shard(dialect: Dialect, shard_id: int) -> Program[ShardRecord]:
    rows = yield Fetch(f"SELECT {SHARD_COLS} FROM shards WHERE shard_id = %s", (shard_id,))
    if rows:
        return _shard(rows[0])
    # Two hosts may race to create it: the loser's insert is a no-op, both read the winner's row.
    yield Exec(_insert_ignore(dialect, "shards", SHARD_COLS, "shard_id"), (shard_id, 0, "", 0, 0, b"", 0))
    rows = yield Fetch(f"SELECT {SHARD_COLS} FROM shards WHERE shard_id = %s", (shard_id,))
    return _shard(rows[0])


def _insert_ignore(dialect: Dialect, table: str, cols: str, key: str) -> str:
    n = len(cols.split(","))
    values = ", ".join(["%s"] * n)
    if dialect.name == "postgres":
        return f"INSERT INTO {table} ({cols}) VALUES ({values}) ON CONFLICT ({key}) DO NOTHING"
    # Not INSERT IGNORE: that would also swallow errors other than the duplicate key.
    return f"INSERT INTO {table} ({cols}) VALUES ({values}) ON DUPLICATE KEY UPDATE {key} = {key}"


def update_shard(shard: ShardRecord, previous_range_id: int) -> Program[None]:
    rows = yield Fetch("SELECT range_id FROM shards WHERE shard_id = %s FOR UPDATE", (shard.shard_id,))
    if not rows or int(rows[0][0]) != previous_range_id:
        raise ShardOwnershipLost(
            shard.shard_id,
            f"shard {shard.shard_id}: ownership lost (range_id is "
            f"{int(rows[0][0]) if rows else 'absent'}, expected {previous_range_id})",
        )
    yield Exec(
        "UPDATE shards SET range_id = %s, owner = %s, transfer_ack_level = %s, timer_ack_level = %s,"
        " data = %s, updated_at = %s WHERE shard_id = %s",
        (
            shard.range_id,
            shard.owner,
            shard.transfer_ack_level,
            shard.timer_ack_level,
            shard.data,
            shard.updated_at,
            shard.shard_id,
        ),
    )


def _shard_lock_query(shard_id: int) -> Fetch:
    return Fetch("SELECT range_id FROM shards WHERE shard_id = %s FOR UPDATE", (shard_id,))


def _check_fence(shard_id: int, range_id: int, rows: Sequence[Any]) -> None:
    if not rows or int(rows[0][0]) != range_id:
        stored = int(rows[0][0]) if rows else "absent"
        raise ShardOwnershipLost(shard_id, f"shard {shard_id}: ownership lost (range_id is {stored}, writer has {range_id})")


def lock_shard(shard_id: int, range_id: int) -> Program[None]:
    """Every workflow write starts here: fence on the shard's range_id and serialize its writers."""
    rows = yield _shard_lock_query(shard_id)
    _check_fence(shard_id, range_id, rows)


# --- executions -------------------------------------------------------------------------

EXEC_KEY = "shard_id = %s AND domain_id = %s AND workflow_id = %s AND run_id = %s"
CURRENT_KEY = "shard_id = %s AND domain_id = %s AND workflow_id = %s"
EXEC_COLS = "next_event_id, state, close_status, create_request_id, start_time, info"
CURRENT_COLS = "run_id, state, close_status, create_request_id, start_time"
VIS_COLS = [
    "domain_id",
    "run_id",
    "workflow_id",
    "workflow_type",
    "start_time",
    "execution_time",
    "close_time",
    "close_status",
    "history_length",
    "task_list",
    "is_cron",
    "memo",
    "search_attributes",
    "update_time",
]
VIS_SELECT = ", ".join(VIS_COLS)


def _current(row: Sequence[Any]) -> CurrentExecutionRecord:
    return CurrentExecutionRecord(
        run_id=row[0], state=int(row[1]), close_status=int(row[2]), create_request_id=row[3], start_time=int(row[4])
    )


def _check_create(shard_id: int, op: CreateWorkflow, current: CurrentExecutionRecord | None) -> None:
    s = op.snapshot
    if op.mode == CreateMode.BRAND_NEW:
        if current is not None:
            raise AlreadyExists(
                f"workflow {s.workflow_id!r} already has a current run {current.run_id!r}", current=current
            )
    elif op.mode == CreateMode.WORKFLOW_ID_REUSE:
        if current is None or current.run_id != op.previous_run_id:
            named = current.run_id if current else "none"
            raise ConditionFailed(
                f"workflow {s.workflow_id!r}: current run is {named}, not the previous run {op.previous_run_id!r}"
            )
        if current.state != WorkflowState.COMPLETED:
            raise ConditionFailed(f"workflow {s.workflow_id!r}: previous run {current.run_id!r} is still open")
    elif op.mode == CreateMode.CONTINUE_AS_NEW:
        if current is None or current.run_id != op.previous_run_id:
            named = current.run_id if current else "none"
            raise ConditionFailed(
                f"workflow {s.workflow_id!r}: current run is {named}, not the continued run {op.previous_run_id!r}"
            )
    else:
        raise ConditionFailed(f"unknown create mode {op.mode!r}")


# --- group commit: one condition read for the whole group, writes grouped by table -------

WorkflowKey = tuple[str, str]  # (domain_id, workflow_id): a current row
RunKey = tuple[str, str, str]  # (domain_id, workflow_id, run_id): a run row
Row = tuple[Any, ...]

#: Bounds of one multi-row statement: PostgreSQL takes at most 65,535 parameters, and a
#: size well under MySQL's max_allowed_packet (16 MB by default on MariaDB; PyMySQL's own
#: executemany uses 1 MB).
_WRITE_PARAMS = 30_000
_WRITE_BYTES = 1 << 20

EXEC_COLUMNS = ("shard_id", "domain_id", "workflow_id", "run_id", *EXEC_COLS.split(", "))
EXEC_PK = ("shard_id", "domain_id", "workflow_id", "run_id")
CURRENT_COLUMNS = ("shard_id", "domain_id", "workflow_id", *CURRENT_COLS.split(", "))
CURRENT_PK = ("shard_id", "domain_id", "workflow_id")
MAP_COLUMNS = ("shard_id", "domain_id", "workflow_id", "run_id", "kind", "map_key", "value")
MAP_PK = MAP_COLUMNS[:-1]
HISTORY_COLUMNS = ("shard_id", "domain_id", "workflow_id", "run_id", "first_event_id", "last_event_id", "data")
TRANSFER_COLUMNS = (
    "shard_id", "task_id", "task_type", "domain_id", "workflow_id", "run_id", "data", "visibility_time",
)  # fmt: skip
TIMER_COLUMNS = ("shard_id", "visibility_time", "task_id", "task_type", "domain_id", "workflow_id", "run_id", "data")


@functools.lru_cache(maxsize=256)
def _insert_sql(dialect: Dialect, table: str, cols: tuple[str, ...], key: tuple[str, ...] | None, rows: int) -> str:
    """A multi-row INSERT of `rows` rows; with `key`, an upsert replacing the other columns
    of an existing row (psycopg's raw cursor and PyMySQL both take these without parsing
    each row, see the PostgreSQL driver)."""
    row = "(" + ", ".join(["%s"] * len(cols)) + ")"
    head = f"INSERT INTO {table} ({', '.join(cols)}) VALUES " + ", ".join([row] * rows)
    if key is None:
        return head
    rest = [c for c in cols if c not in key]
    if dialect.name == "postgres":
        return f"{head} ON CONFLICT ({', '.join(key)}) DO UPDATE SET " + ", ".join(f"{c} = EXCLUDED.{c}" for c in rest)
    # VALUES(col) names the column of the row being inserted, in a multi-row INSERT too.
    return f"{head} ON DUPLICATE KEY UPDATE " + ", ".join(f"{c} = VALUES({c})" for c in rest)


@functools.lru_cache(maxsize=256)
def _keys_sql(cols: tuple[str, ...], rows: int) -> str:
    """A predicate: the row's `cols` equal one of `rows` keys.

    OR of equalities, not a row-value IN: every optimizer (MariaDB's included) turns it
    into primary-key lookups."""
    one = "(" + " AND ".join(f"{c} = %s" for c in cols) + ")"
    return "(" + " OR ".join([one] * rows) + ")"


def _params(rows: Sequence[Row]) -> list[Any]:
    return [v for row in rows for v in row]


def _chunks(rows: Sequence[Row]) -> Iterator[Sequence[Row]]:
    """`rows` cut into runs that fit one statement (usually all of them)."""
    start, size, params = 0, 0, 0
    for i, row in enumerate(rows):
        row_size = sum(len(v) if isinstance(v, bytes | str) else 8 for v in row)
        if i > start and (size + row_size > _WRITE_BYTES or params + len(row) > _WRITE_PARAMS):
            yield rows[start:i]
            start, size, params = i, 0, 0
        size += row_size
        params += len(row)
    if start < len(rows):
        yield rows[start:]


def _insert_rows(
    dialect: Dialect, table: str, cols: tuple[str, ...], rows: Sequence[Row], key: tuple[str, ...] | None = None
) -> Iterator[Exec]:
    """INSERTs (upserts with `key`) of many rows in one statement."""
    for chunk in _chunks(rows):
        yield Exec(_insert_sql(dialect, table, cols, key, len(chunk)), _params(chunk))


def _condition_reads(
    shard_id: int, workflows: Sequence[WorkflowKey], runs: Sequence[RunKey]
) -> tuple[list[Fetch], int]:
    """The current rows and run rows an op group is conditioned on, locked: in the lock order
    every writer uses (shard row, then current rows, then run rows). Also how many of the
    reads are of current rows."""
    reads = []
    for wf_chunk in _chunks(workflows):
        reads.append(
            Fetch(
                f"SELECT domain_id, workflow_id, {CURRENT_COLS} FROM current_executions WHERE shard_id = %s"
                f" AND {_keys_sql(('domain_id', 'workflow_id'), len(wf_chunk))} FOR UPDATE",
                (shard_id, *_params(wf_chunk)),
            )
        )
    n_current = len(reads)
    for chunk in _chunks(runs):
        reads.append(
            Fetch(
                "SELECT domain_id, workflow_id, run_id, next_event_id, create_request_id, start_time FROM executions"
                f" WHERE shard_id = %s AND {_keys_sql(('domain_id', 'workflow_id', 'run_id'), len(chunk))}"
                " FOR UPDATE",
                (shard_id, *_params(chunk)),
            )
        )
    return reads, n_current


def _keys_read_by(ops: Sequence[CreateWorkflow | UpdateWorkflow]) -> tuple[list[WorkflowKey], list[RunKey]]:
    workflows: dict[WorkflowKey, None] = {}  # dicts as ordered sets: each key read once
    runs: dict[RunKey, None] = {}
    for op in ops:
        if isinstance(op, CreateWorkflow):
            s = op.snapshot
            workflows[(s.domain_id, s.workflow_id)] = None
            runs[(s.domain_id, s.workflow_id, s.run_id)] = None
            continue
        if op.update_current or op.new_run is not None:
            workflows[(op.domain_id, op.workflow_id)] = None
        runs[(op.domain_id, op.workflow_id, op.run_id)] = None
        if op.new_run is not None:
            s = op.new_run.snapshot
            runs[(s.domain_id, s.workflow_id, s.run_id)] = None
    return list(workflows), list(runs)


@dataclass(slots=True)
class _StoredRun:
    """The columns of a run row the group needs: its condition and what an upsert keeps."""

    next_event_id: int
    create_request_id: str
    start_time: int


class _GroupView:
    """The condition columns of an op group as the database has them, kept up to date as
    each op passes: so an op is checked against the writes of the ops before it in the
    call, exactly as if they had been written one by one."""

    __slots__ = ("currents", "runs")

    def __init__(self, current_rows: Sequence[Sequence[Any]], run_rows: Sequence[Sequence[Any]]) -> None:
        self.currents: dict[WorkflowKey, CurrentExecutionRecord] = {
            (r[0], r[1]): _current(r[2:]) for r in current_rows
        }
        self.runs: dict[RunKey, _StoredRun] = {
            (r[0], r[1], r[2]): _StoredRun(int(r[3]), r[4], int(r[5])) for r in run_rows
        }

    def check_create(self, shard_id: int, op: CreateWorkflow) -> None:
        s = op.snapshot
        _check_create(shard_id, op, self.currents.get((s.domain_id, s.workflow_id)))
        if (s.domain_id, s.workflow_id, s.run_id) in self.runs:
            raise AlreadyExists(f"run {s.run_id!r} of workflow {s.workflow_id!r} already exists")

    def created(self, op: CreateWorkflow) -> None:
        s = op.snapshot
        self.currents[(s.domain_id, s.workflow_id)] = CurrentExecutionRecord(
            s.run_id, s.state, s.close_status, s.create_request_id, s.start_time
        )
        self.runs[(s.domain_id, s.workflow_id, s.run_id)] = _StoredRun(s.next_event_id, s.create_request_id, s.start_time)

    def check_update(self, shard_id: int, op: UpdateWorkflow) -> _StoredRun:
        """Raise the op's error (in the order of the checks: current row, run row, new run),
        or return the run row it updates."""
        new = op.new_run
        current = self.currents.get((op.domain_id, op.workflow_id)) if op.update_current or new else None
        if op.update_current and (current is None or current.run_id != op.run_id):
            named = current.run_id if current else "none"
            raise ConditionFailed(f"workflow {op.workflow_id!r}: current run is {named}, not {op.run_id!r}")
        stored = self.runs.get((op.domain_id, op.workflow_id, op.run_id))
        if stored is None:
            raise ConditionFailed(f"run {op.run_id!r} of workflow {op.workflow_id!r} does not exist")
        if stored.next_event_id != op.condition_next_event_id:
            raise ConditionFailed(
                f"run {op.run_id!r}: next_event_id is {stored.next_event_id},"
                f" the update expected {op.condition_next_event_id}"
            )
        if new is not None:
            if new.mode != CreateMode.CONTINUE_AS_NEW:
                raise ConditionFailed("UpdateWorkflow.new_run must use CreateMode.CONTINUE_AS_NEW")
            # Checked against the current row as read: it must (still) name the run that continues.
            self.check_create(shard_id, new)
        return stored

    def updated(self, op: UpdateWorkflow, stored: _StoredRun) -> CurrentExecutionRecord | None:
        """Apply a passing update; return the current row it writes (None: it leaves it alone)."""
        wf = (op.domain_id, op.workflow_id)
        self.runs[(*wf, op.run_id)] = _StoredRun(op.next_event_id, stored.create_request_id, stored.start_time)
        if op.new_run is not None:
            self.created(op.new_run)
        elif op.update_current:
            old = self.currents[wf]
            self.currents[wf] = CurrentExecutionRecord(
                old.run_id, op.state, op.close_status, old.create_request_id, old.start_time
            )
        else:
            return None
        return self.currents[wf]


class _Round:
    """The rows of the passing ops of one round, by table.

    A round holds at most one op per workflow (and per visibility row), so no two of its
    ops write the same row and its rows can go table by table, several rows per statement:
    the outcome is the one of writing the ops one by one. An op on a workflow already in
    the round starts the next round, written after this one (it must see this round's rows).

    The current row and an updated run row are written whole, as upserts (the group read
    them, so every column is known): one multi-row statement whether the row is new, swings
    to another run or only changes state.
    """

    __slots__ = (
        "keys", "exec_inserts", "exec_updates", "currents", "map_deletes", "map_upserts", "history", "transfer",
        "timers", "visibility",
    )  # fmt: skip

    def __init__(self) -> None:
        self.keys: set[tuple[str, ...]] = set()
        self.exec_inserts: list[Row] = []
        self.exec_updates: list[Row] = []
        self.currents: list[Row] = []
        self.map_deletes: list[Row] = []
        self.map_upserts: list[Row] = []
        self.history: list[Row] = []
        self.transfer: list[Row] = []
        self.timers: list[Row] = []
        self.visibility: list[Row] = []

    @staticmethod
    def keys_of(op: CreateWorkflow | UpdateWorkflow) -> set[tuple[str, ...]]:
        if isinstance(op, CreateWorkflow):
            keys: set[tuple[str, ...]] = set()
            creates = [op]
        else:
            keys = {(op.domain_id, op.workflow_id)}
            creates = [op.new_run] if op.new_run is not None else []
            if op.visibility is not None:
                keys.add(("visibility", op.visibility.domain_id, op.visibility.run_id))
        for c in creates:
            keys.add((c.snapshot.domain_id, c.snapshot.workflow_id))
            if c.visibility is not None:
                keys.add(("visibility", c.visibility.domain_id, c.visibility.run_id))
        return keys

    def add_create(self, shard_id: int, op: CreateWorkflow) -> None:
        s = op.snapshot
        self.exec_inserts.append(
            (shard_id, s.domain_id, s.workflow_id, s.run_id, s.next_event_id, s.state, s.close_status,
             s.create_request_id, s.start_time, s.info)
        )  # fmt: skip
        self.currents.append(
            (shard_id, s.domain_id, s.workflow_id, s.run_id, s.state, s.close_status, s.create_request_id, s.start_time)
        )
        upserts = [(kind, k, v) for kind, entries in s.maps.items() for k, v in entries.items()]
        self._add_children(shard_id, s.domain_id, s.workflow_id, s.run_id, upserts, (), op)

    def add_update(
        self, shard_id: int, op: UpdateWorkflow, stored: _StoredRun, current: CurrentExecutionRecord | None
    ) -> None:
        self.exec_updates.append(
            (shard_id, op.domain_id, op.workflow_id, op.run_id, op.next_event_id, op.state, op.close_status,
             stored.create_request_id, stored.start_time, op.info)
        )  # fmt: skip
        if current is not None and op.new_run is None:  # with a new run, add_create writes it
            c = current
            self.currents.append(
                (shard_id, op.domain_id, op.workflow_id, c.run_id, c.state, c.close_status, c.create_request_id,
                 c.start_time)
            )  # fmt: skip
        self._add_children(shard_id, op.domain_id, op.workflow_id, op.run_id, op.map_upserts, op.map_deletes, op)
        if op.new_run is not None:
            self.add_create(shard_id, op.new_run)

    def _add_children(
        self,
        shard_id: int,
        domain_id: str,
        workflow_id: str,
        run_id: str,
        map_upserts: Sequence[tuple[int, str, bytes]],
        map_deletes: Sequence[tuple[int, str]],
        op: CreateWorkflow | UpdateWorkflow,
    ) -> None:
        """The rows that hang off a run: map entries, history batches, queue tasks, visibility."""
        key = (shard_id, domain_id, workflow_id, run_id)
        self.map_deletes.extend((*key, int(kind), k) for kind, k in map_deletes)
        # One row per map key (the last value wins, as writing them in turn would): a
        # multi-row upsert may not name a key twice.
        values = {(int(kind), k): v for kind, k, v in map_upserts}
        self.map_upserts.extend((*key, kind, k, v) for (kind, k), v in values.items())
        self.history.extend((*key, b.first_event_id, b.last_event_id, b.data) for b in op.history)
        self.transfer.extend(
            (shard_id, t.task_id, t.task_type, t.domain_id, t.workflow_id, t.run_id, t.data, t.visibility_time)
            for t in op.transfer_tasks
        )
        self.timers.extend(
            (shard_id, t.visibility_time, t.task_id, t.task_type, t.domain_id, t.workflow_id, t.run_id, t.data)
            for t in op.timer_tasks
        )
        if op.visibility is not None:
            self.visibility.append(_visibility_params(op.visibility))

    def statements(self, dialect: Dialect) -> Iterator[Exec]:
        """At most one statement per table (more only past a statement's size bounds)."""
        yield from _insert_rows(dialect, "executions", EXEC_COLUMNS, self.exec_inserts)
        yield from _insert_rows(dialect, "executions", EXEC_COLUMNS, self.exec_updates, EXEC_PK)
        yield from _insert_rows(dialect, "current_executions", CURRENT_COLUMNS, self.currents, CURRENT_PK)
        for chunk in _chunks(self.map_deletes):
            yield Exec(
                f"DELETE FROM execution_maps WHERE {_keys_sql(MAP_PK, len(chunk))}", _params(chunk)
            )
        yield from _insert_rows(dialect, "execution_maps", MAP_COLUMNS, self.map_upserts, MAP_PK)
        yield from _insert_rows(dialect, "history_batches", HISTORY_COLUMNS, self.history)
        yield from _insert_rows(dialect, "transfer_tasks", TRANSFER_COLUMNS, self.transfer)
        yield from _insert_rows(dialect, "timer_tasks", TIMER_COLUMNS, self.timers)
        yield from _insert_rows(
            dialect, "executions_visibility", tuple(VIS_COLS), self.visibility, ("domain_id", "run_id")
        )


def commit_ops(
    dialect: Dialect, shard_id: int, ops: Sequence[CreateWorkflow | UpdateWorkflow], fence_range_id: int | None
) -> Program[list[BaseException | None]]:
    """Store.commit's program: every op's conditions checked up front, the passing ops written.

    ONE batch of reads (one round trip where the driver pipelines) locks the shard row
    (with `fence_range_id`: the caller did not lock it yet), the current rows and the run
    rows of every op; the conditions are then checked in Python, op by op in call order,
    each against the rows as the ops before it leave them. An op whose condition fails
    gets its error at its index and writes nothing, so the others need no savepoints.
    The rows of the passing ops are then written grouped by table, many rows per
    statement (see _Round), instead of statement by statement per op.

    A database that refuses a row (a value too long, ...) fails the whole program: the
    driver then runs the ops one by one, each in its own savepoint, with this program.
    """
    workflows, runs = _keys_read_by(ops)
    queries, n_current = _condition_reads(shard_id, workflows, runs)
    if fence_range_id is not None:
        queries.insert(0, _shard_lock_query(shard_id))
    results: list[Sequence[Any]] = list((yield FetchAll(queries)))
    if fence_range_id is not None:
        _check_fence(shard_id, fence_range_id, results.pop(0))
    view = _GroupView(
        [r for rows in results[:n_current] for r in rows], [r for rows in results[n_current:] for r in rows]
    )
    outcome: list[BaseException | None] = []
    rounds = [_Round()]
    for op in ops:
        try:
            if isinstance(op, CreateWorkflow):
                view.check_create(shard_id, op)
            else:
                stored = view.check_update(shard_id, op)
        except (ConditionFailed, AlreadyExists) as e:
            outcome.append(e)
            continue
        outcome.append(None)
        keys = _Round.keys_of(op)
        if not keys.isdisjoint(rounds[-1].keys):
            rounds.append(_Round())
        round_ = rounds[-1]
        round_.keys |= keys
        if isinstance(op, CreateWorkflow):
            view.created(op)
            round_.add_create(shard_id, op)
        else:
            round_.add_update(shard_id, op, stored, view.updated(op, stored))
    for r in rounds:
        yield from r.statements(dialect)
    return outcome


def get_execution(
    dialect: Dialect, shard_id: int, domain_id: str, workflow_id: str, run_id: str
) -> Program[ExecutionRecord]:
    key = (shard_id, domain_id, workflow_id, run_id)
    # The run row and its map rows in one batch: the mutable state of a cache miss in one round trip.
    # At READ COMMITTED each statement sees its own snapshot, so the run row is share-locked
    # (inside the caller's transaction): every writer of this run locks that row FOR UPDATE,
    # so none can commit between the two reads and the maps match the row.
    rows, map_rows = yield FetchAll(
        [
            Fetch(f"SELECT {EXEC_COLS} FROM executions WHERE {EXEC_KEY} {dialect.share_lock}", key),
            Fetch(f"SELECT kind, map_key, value FROM execution_maps WHERE {EXEC_KEY}", key),
        ]
    )
    if not rows:
        raise NotFound(f"run {run_id!r} of workflow {workflow_id!r} not found")
    r = rows[0]
    maps: dict[int, dict[str, bytes]] = {}
    for kind, k, v in map_rows:
        maps.setdefault(int(kind), {})[k] = bytes(v)
    return ExecutionRecord(
        domain_id=domain_id,
        workflow_id=workflow_id,
        run_id=run_id,
        next_event_id=int(r[0]),
        state=int(r[1]),
        close_status=int(r[2]),
        create_request_id=r[3],
        start_time=int(r[4]),
        info=bytes(r[5]),
        maps=maps,
    )


def get_current_execution(shard_id: int, domain_id: str, workflow_id: str) -> Program[CurrentExecutionRecord]:
    rows = yield Fetch(
        f"SELECT {CURRENT_COLS} FROM current_executions WHERE {CURRENT_KEY}", (shard_id, domain_id, workflow_id)
    )
    if not rows:
        raise NotFound(f"workflow {workflow_id!r} has no current run")
    return _current(rows[0])


def delete_execution(shard_id: int, domain_id: str, workflow_id: str, run_id: str) -> Program[None]:
    key = (shard_id, domain_id, workflow_id, run_id)
    # Lock the shard row (without fencing) so this never interleaves with a commit of the shard.
    yield Fetch("SELECT range_id FROM shards WHERE shard_id = %s FOR UPDATE", (shard_id,))
    yield Exec(f"DELETE FROM current_executions WHERE {CURRENT_KEY} AND run_id = %s", key)
    yield Exec(f"DELETE FROM execution_maps WHERE {EXEC_KEY}", key)
    yield Exec(f"DELETE FROM history_batches WHERE {EXEC_KEY}", key)
    yield Exec(f"DELETE FROM executions WHERE {EXEC_KEY}", key)


def read_history(
    shard_id: int,
    domain_id: str,
    workflow_id: str,
    run_id: str,
    min_event_id: int,
    max_event_id: int,
    page_size: int,
    token: bytes | None,
) -> Program[tuple[list[HistoryBatch], bytes | None]]:
    after = decode_int_token(token, "history")
    limit = page_size if page_size > 0 else 1_000_000_000
    key = (shard_id, domain_id, workflow_id, run_id)
    lower_params: tuple[Any, ...]
    if after is not None:
        lower_sql, lower_params = "first_event_id > %s", (after,)
    else:
        # Seek straight to the batch holding min_event_id (the last one starting at or
        # before it), so reading the tail of a long history does not scan its head.
        lower_sql = (
            "first_event_id >= COALESCE((SELECT MAX(first_event_id) FROM history_batches"
            f" WHERE {EXEC_KEY} AND first_event_id <= %s), 0)"
        )
        lower_params = (*key, min_event_id)
    rows = yield Fetch(
        "SELECT first_event_id, last_event_id, data FROM history_batches"
        f" WHERE {EXEC_KEY} AND {lower_sql} AND last_event_id >= %s AND first_event_id < %s"
        " ORDER BY first_event_id LIMIT %s",
        (*key, *lower_params, min_event_id, max_event_id, limit + 1),
    )
    batches = [HistoryBatch(int(r[0]), int(r[1]), bytes(r[2])) for r in rows[:limit]]
    return batches, (encode_int_token(batches[-1].first_event_id) if len(rows) > limit else None)


# --- queues -----------------------------------------------------------------------------


def get_transfer_tasks(shard_id: int, min_task_id: int, max_task_id: int, limit: int) -> Program[list[TransferTask]]:
    rows = yield Fetch(
        "SELECT task_id, task_type, domain_id, workflow_id, run_id, data, visibility_time FROM transfer_tasks"
        " WHERE shard_id = %s AND task_id > %s AND task_id <= %s ORDER BY task_id LIMIT %s",
        (shard_id, min_task_id, max_task_id, limit),
    )
    return [TransferTask(int(r[0]), int(r[1]), r[2], r[3], r[4], bytes(r[5]), int(r[6])) for r in rows]


def get_timer_tasks(
    shard_id: int, min_time: int, min_task_id: int, max_time: int, limit: int
) -> Program[list[TimerTask]]:
    # Row-value comparison spelled out: MySQL does not use the index for (a, b) >= (x, y).
    rows = yield Fetch(
        "SELECT visibility_time, task_id, task_type, domain_id, workflow_id, run_id, data FROM timer_tasks"
        " WHERE shard_id = %s AND visibility_time >= %s AND visibility_time < %s"
        " AND (visibility_time > %s OR task_id >= %s) ORDER BY visibility_time, task_id LIMIT %s",
        (shard_id, min_time, max_time, min_time, min_task_id, limit),
    )
    return [TimerTask(int(r[0]), int(r[1]), int(r[2]), r[3], r[4], r[5], bytes(r[6])) for r in rows]


def complete_transfer_task(shard_id: int, task_id: int) -> Program[None]:
    yield Exec("DELETE FROM transfer_tasks WHERE shard_id = %s AND task_id = %s", (shard_id, task_id))


def complete_transfer_tasks(shard_id: int, up_to_task_id: int) -> Program[None]:
    yield Exec("DELETE FROM transfer_tasks WHERE shard_id = %s AND task_id <= %s", (shard_id, up_to_task_id))


def complete_timer_task(shard_id: int, visibility_time: int, task_id: int) -> Program[None]:
    yield Exec(
        "DELETE FROM timer_tasks WHERE shard_id = %s AND visibility_time = %s AND task_id = %s",
        (shard_id, visibility_time, task_id),
    )


def complete_timer_tasks(shard_id: int, before_time: int) -> Program[None]:
    yield Exec("DELETE FROM timer_tasks WHERE shard_id = %s AND visibility_time < %s", (shard_id, before_time))


# --- task lists -------------------------------------------------------------------------

TASK_LIST_COLS = "domain_id, name, task_type, kind, range_id, ack_level, data, updated_at"
TASK_LIST_KEY = "domain_id = %s AND name = %s AND task_type = %s"
TASKS_KEY = "domain_id = %s AND name = %s AND task_type = %s"


def _task_list(row: Sequence[Any]) -> TaskListRecord:
    return TaskListRecord(
        domain_id=row[0],
        name=row[1],
        task_type=int(row[2]),
        kind=int(row[3]),
        range_id=int(row[4]),
        ack_level=int(row[5]),
        data=bytes(row[6]),
        updated_at=int(row[7]),
    )


def lease_task_list(dialect: Dialect, domain_id: str, name: str, task_type: int, kind: int) -> Program[TaskListRecord]:
    yield Exec(
        dialect.insert_or_bump(
            "task_lists",
            TASK_LIST_COLS.split(", "),
            ["domain_id", "name", "task_type"],
            "range_id",
        ),
        (domain_id, name, task_type, kind, 1, 0, b"", 0),
    )
    rows = yield Fetch(f"SELECT {TASK_LIST_COLS} FROM task_lists WHERE {TASK_LIST_KEY}", (domain_id, name, task_type))
    return _task_list(rows[0])


def update_task_list(tl: TaskListRecord) -> Program[None]:
    count = yield ExecCount(
        f"UPDATE task_lists SET ack_level = %s, data = %s, updated_at = %s, kind = %s"
        f" WHERE {TASK_LIST_KEY} AND range_id = %s",
        (tl.ack_level, tl.data, tl.updated_at, tl.kind, tl.domain_id, tl.name, tl.task_type, tl.range_id),
    )
    if not count:
        raise ConditionFailed(f"task list {tl.name!r}: range_id is no longer {tl.range_id} (lease lost)")


def list_task_lists(domain_id: str) -> Program[list[TaskListRecord]]:
    rows = yield Fetch(
        f"SELECT {TASK_LIST_COLS} FROM task_lists WHERE domain_id = %s ORDER BY name, task_type", (domain_id,)
    )
    return [_task_list(r) for r in rows]


def _check_task_list_range(domain_id: str, name: str, task_type: int, range_id: int) -> Program[None]:
    rows = yield Fetch(
        f"SELECT range_id FROM task_lists WHERE {TASK_LIST_KEY} FOR UPDATE", (domain_id, name, task_type)
    )
    if not rows or int(rows[0][0]) != range_id:
        stored = int(rows[0][0]) if rows else "absent"
        raise ConditionFailed(f"task list {name!r}: range_id is {stored}, not {range_id} (lease lost)")


def delete_task_list(domain_id: str, name: str, task_type: int, range_id: int) -> Program[None]:
    yield from _check_task_list_range(domain_id, name, task_type, range_id)
    yield Exec(f"DELETE FROM tasks WHERE {TASKS_KEY}", (domain_id, name, task_type))
    yield Exec(f"DELETE FROM task_lists WHERE {TASK_LIST_KEY}", (domain_id, name, task_type))


def create_tasks(
    domain_id: str, name: str, task_type: int, range_id: int, tasks: Sequence[TaskListTask]
) -> Program[None]:
    yield from _check_task_list_range(domain_id, name, task_type, range_id)
    if tasks:
        yield ExecMany(
            "INSERT INTO tasks (domain_id, name, task_type, task_id, data, created_time, expiry_time)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s)",
            [(domain_id, name, task_type, t.task_id, t.data, t.created_time, t.expiry_time) for t in tasks],
        )


def get_tasks(
    domain_id: str, name: str, task_type: int, min_task_id: int, max_task_id: int, limit: int
) -> Program[list[TaskListTask]]:
    rows = yield Fetch(
        f"SELECT task_id, data, created_time, expiry_time FROM tasks WHERE {TASKS_KEY}"
        " AND task_id > %s AND task_id <= %s ORDER BY task_id LIMIT %s",
        (domain_id, name, task_type, min_task_id, max_task_id, limit),
    )
    return [TaskListTask(int(r[0]), bytes(r[1]), int(r[2]), int(r[3])) for r in rows]


def complete_task(domain_id: str, name: str, task_type: int, task_id: int) -> Program[None]:
    yield Exec(f"DELETE FROM tasks WHERE {TASKS_KEY} AND task_id = %s", (domain_id, name, task_type, task_id))


def complete_tasks_less_than(domain_id: str, name: str, task_type: int, task_id: int) -> Program[int]:
    count = yield ExecCount(
        f"DELETE FROM tasks WHERE {TASKS_KEY} AND task_id <= %s", (domain_id, name, task_type, task_id)
    )
    return int(count)


def count_tasks(domain_id: str, name: str, task_type: int, min_task_id: int) -> Program[int]:
    rows = yield Fetch(
        f"SELECT COUNT(*) FROM tasks WHERE {TASKS_KEY} AND task_id > %s", (domain_id, name, task_type, min_task_id)
    )
    return int(rows[0][0])


# --- visibility -------------------------------------------------------------------------


def _visibility_params(r: VisibilityRecord) -> tuple[Any, ...]:
    return (
        r.domain_id,
        r.run_id,
        r.workflow_id,
        r.workflow_type,
        r.start_time,
        r.execution_time,
        r.close_time,
        r.close_status,
        r.history_length,
        r.task_list,
        1 if r.is_cron else 0,
        r.memo,
        json.dumps(r.search_attributes, separators=(",", ":"), sort_keys=True),
        r.update_time,
    )


def visibility_record(row: Sequence[Any]) -> VisibilityRecord:
    return VisibilityRecord(
        domain_id=row[0],
        run_id=row[1],
        workflow_id=row[2],
        workflow_type=row[3],
        start_time=int(row[4]),
        execution_time=int(row[5]),
        close_time=None if row[6] is None else int(row[6]),
        close_status=None if row[7] is None else int(row[7]),
        history_length=int(row[8]),
        task_list=row[9],
        is_cron=bool(row[10]),
        memo=bytes(row[11]),
        search_attributes=json.loads(row[12]) if row[12] else {},
        update_time=int(row[13]),
    )


def upsert_visibility(dialect: Dialect, r: VisibilityRecord) -> Program[None]:
    yield Exec(dialect.upsert("executions_visibility", VIS_COLS, ["domain_id", "run_id"]), _visibility_params(r))


def delete_visibility(domain_id: str, run_id: str) -> Program[None]:
    yield Exec("DELETE FROM executions_visibility WHERE domain_id = %s AND run_id = %s", (domain_id, run_id))


def list_workflows(
    dialect: Dialect, domain_id: str, query: VisibilityQuery, page_size: int, token: bytes | None
) -> Program[tuple[list[VisibilityRecord], bytes | None]]:
    cq = compile_query(query, dialect=dialect.name)
    where, params = f"domain_id = %s AND ({cq.where})", [domain_id, *cq.params]
    if token:
        # Keyset paging on the ORDER BY values of the last row: stable while runs start and close.
        seek_sql, seek_params = cq.after_token(token)
        where, params = f"{where} AND ({seek_sql})", [*params, *seek_params]
    limit = page_size if page_size > 0 else 1_000_000_000  # 0: everything, as the contract's other lists
    rows = yield Fetch(
        f"SELECT {VIS_SELECT} FROM executions_visibility WHERE {where} ORDER BY {cq.order_by} LIMIT %s",
        (*params, limit + 1),
    )
    records = [visibility_record(r) for r in rows[:limit]]
    return records, (cq.page_token(records[-1]) if len(rows) > limit else None)


def count_workflows(dialect: Dialect, domain_id: str, query: VisibilityQuery) -> Program[int]:
    compiled = compile_query(query, dialect=dialect.name)
    rows = yield Fetch(
        f"SELECT COUNT(*) FROM executions_visibility WHERE domain_id = %s AND ({compiled.where})",
        (domain_id, *compiled.params),
    )
    return int(rows[0][0])


# --- a blocking driver (MySQL runs programs with it in worker threads) -------------------


def run_blocking(cursor: Any, program: Program[T]) -> T:
    """Drive a program on a DB-API cursor, one statement at a time."""
    send: Any = None
    try:
        while True:
            stmt = program.send(send)
            if isinstance(stmt, Fetch):
                cursor.execute(stmt.sql, stmt.params)
                send = cursor.fetchall()
            elif isinstance(stmt, FetchAll):
                send = []
                for q in stmt.queries:
                    cursor.execute(q.sql, q.params)
                    send.append(cursor.fetchall())
            elif isinstance(stmt, ExecMany):
                cursor.executemany(stmt.sql, stmt.rows)
                send = None
            else:
                cursor.execute(stmt.sql, stmt.params)
                send = cursor.rowcount if isinstance(stmt, ExecCount) else None
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]


# --- schema checks ------------------------------------------------------------------------


def redact_url(url: str) -> str:
    """The store URL without its password, for messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def check_schema_version(found: int | None, expected: int, url: str) -> None:
    """SchemaError naming the command that fixes a missing, outdated or newer schema."""
    shown = redact_url(url)
    if found is None:
        raise SchemaError(
            f"no cadence-fast schema in {shown}; create it with `cadence-fast schema setup --store {shown}`"
        )
    if found < expected:
        raise SchemaError(
            f"schema version {found} in {shown} is older than this cadence-fast's {expected}; "
            f"migrate it with `cadence-fast schema update --store {shown}`"
        )
    if found > expected:
        raise SchemaError(
            f"schema version {found} in {shown} is newer than this cadence-fast (it knows {expected}); "
            "upgrade cadence-fast"
        )


# --- the Store methods, once, over a driver ----------------------------------------------


class ProgramStore(Store):
    """Store methods as programs; a subclass supplies the driver (`_read`, `_write`) and `commit`."""

    dialect: ClassVar[Dialect]

    @abc.abstractmethod
    async def _read(self, make: Callable[[], Program[T]]) -> T:
        """Run a read-only program (safe to retry on a fresh connection)."""

    @abc.abstractmethod
    async def _write(self, make: Callable[[], Program[T]]) -> T:
        """Run a program in one transaction; commit when it returns, roll back when it raises.

        `make` builds the program: a driver may run it again after a deadlock rolled it back."""

    # domains
    async def create_domain(self, domain: DomainRecord) -> int:
        return await self._write(lambda: create_domain(domain))

    async def get_domain(self, *, domain_id: str | None = None, name: str | None = None) -> DomainRecord:
        return await self._read(lambda: get_domain(domain_id, name))

    async def update_domain(self, domain: DomainRecord) -> int:
        return await self._write(lambda: update_domain(domain))

    async def delete_domain(self, domain_id: str) -> None:
        await self._write(lambda: delete_domain(domain_id))

    async def list_domains(
        self, page_size: int, next_page_token: bytes | None
    ) -> tuple[list[DomainRecord], bytes | None]:
        return await self._read(lambda: list_domains(page_size, next_page_token))

    async def get_metadata_version(self) -> int:
        return await self._read(get_metadata_version)

    # shards
    async def get_or_create_shard(self, shard_id: int) -> ShardRecord:
        return await self._write(lambda: get_or_create_shard(self.dialect, shard_id))

    async def update_shard(self, shard: ShardRecord, previous_range_id: int) -> None:
        await self._write(lambda: update_shard(shard, previous_range_id))

    # executions
    async def get_execution(self, shard_id: int, domain_id: str, workflow_id: str, run_id: str) -> ExecutionRecord:
        # A transaction, not a plain read: the share lock of get_execution holds until it ends.
        return await self._write(lambda: get_execution(self.dialect, shard_id, domain_id, workflow_id, run_id))

    async def get_current_execution(self, shard_id: int, domain_id: str, workflow_id: str) -> CurrentExecutionRecord:
        return await self._read(lambda: get_current_execution(shard_id, domain_id, workflow_id))

    async def delete_execution(self, shard_id: int, domain_id: str, workflow_id: str, run_id: str) -> None:
        await self._write(lambda: delete_execution(shard_id, domain_id, workflow_id, run_id))

    async def read_history(
        self,
        shard_id: int,
        domain_id: str,
        workflow_id: str,
        run_id: str,
        min_event_id: int,
        max_event_id: int,
        page_size: int,
        next_page_token: bytes | None,
    ) -> tuple[list[HistoryBatch], bytes | None]:
        return await self._read(
            lambda: read_history(
                shard_id, domain_id, workflow_id, run_id, min_event_id, max_event_id, page_size, next_page_token
            )
        )

    # queues
    async def get_transfer_tasks(
        self, shard_id: int, min_task_id: int, max_task_id: int, limit: int
    ) -> list[TransferTask]:
        return await self._read(lambda: get_transfer_tasks(shard_id, min_task_id, max_task_id, limit))

    async def get_timer_tasks(
        self, shard_id: int, min_time: int, min_task_id: int, max_time: int, limit: int
    ) -> list[TimerTask]:
        return await self._read(lambda: get_timer_tasks(shard_id, min_time, min_task_id, max_time, limit))

    async def complete_transfer_task(self, shard_id: int, task_id: int) -> None:
        await self._write(lambda: complete_transfer_task(shard_id, task_id))

    async def complete_transfer_tasks(self, shard_id: int, up_to_task_id: int) -> None:
        await self._write(lambda: complete_transfer_tasks(shard_id, up_to_task_id))

    async def complete_timer_task(self, shard_id: int, visibility_time: int, task_id: int) -> None:
        await self._write(lambda: complete_timer_task(shard_id, visibility_time, task_id))

    async def complete_timer_tasks(self, shard_id: int, before_time: int) -> None:
        await self._write(lambda: complete_timer_tasks(shard_id, before_time))

    # task lists
    async def lease_task_list(self, domain_id: str, name: str, task_type: int, kind: int) -> TaskListRecord:
        return await self._write(lambda: lease_task_list(self.dialect, domain_id, name, task_type, kind))

    async def update_task_list(self, task_list: TaskListRecord) -> None:
        await self._write(lambda: update_task_list(task_list))

    async def list_task_lists(self, domain_id: str) -> list[TaskListRecord]:
        return await self._read(lambda: list_task_lists(domain_id))

    async def delete_task_list(self, domain_id: str, name: str, task_type: int, range_id: int) -> None:
        await self._write(lambda: delete_task_list(domain_id, name, task_type, range_id))

    async def create_tasks(
        self, domain_id: str, name: str, task_type: int, range_id: int, tasks: Sequence[TaskListTask]
    ) -> None:
        await self._write(lambda: create_tasks(domain_id, name, task_type, range_id, tasks))

    async def get_tasks(
        self, domain_id: str, name: str, task_type: int, min_task_id: int, max_task_id: int, limit: int
    ) -> list[TaskListTask]:
        return await self._read(lambda: get_tasks(domain_id, name, task_type, min_task_id, max_task_id, limit))

    async def complete_task(self, domain_id: str, name: str, task_type: int, task_id: int) -> None:
        await self._write(lambda: complete_task(domain_id, name, task_type, task_id))

    async def complete_tasks_less_than(self, domain_id: str, name: str, task_type: int, task_id: int) -> int:
        return await self._write(lambda: complete_tasks_less_than(domain_id, name, task_type, task_id))

    async def count_tasks(self, domain_id: str, name: str, task_type: int, min_task_id: int) -> int:
        return await self._read(lambda: count_tasks(domain_id, name, task_type, min_task_id))

    # visibility
    async def upsert_visibility(self, record: VisibilityRecord) -> None:
        await self._write(lambda: upsert_visibility(self.dialect, record))

    async def delete_visibility(self, domain_id: str, run_id: str) -> None:
        await self._write(lambda: delete_visibility(domain_id, run_id))

    async def list_workflows(
        self, domain_id: str, query: VisibilityQuery, page_size: int, next_page_token: bytes | None
    ) -> tuple[list[VisibilityRecord], bytes | None]:
        return await self._read(lambda: list_workflows(self.dialect, domain_id, query, page_size, next_page_token))

    async def count_workflows(self, domain_id: str, query: VisibilityQuery) -> int:
        return await self._read(lambda: count_workflows(self.dialect, domain_id, query))
