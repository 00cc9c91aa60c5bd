"""The Cassandra adapter: cassandra-driver, LWT batches on the shard partition.

URL: ``cassandra://[user[:password]@]host1[:port][,host2...]/keyspace[?replication_factor=3&datacenter=dc1]``
(see `url.py`). The schema (`schema.py`) is set up with ``cadence-fast schema setup
--store URL``, which also creates the keyspace; the server never creates it on its own.

How the contract maps onto Cassandra (DESIGN §6, server-brief §3):

- Fencing and atomicity: every workflow write of a shard is ONE LOGGED batch on the
  shard's partition of ``executions`` carrying LWT conditions (`cql.py`): the shard
  row's ``range_id``, the run's ``next_event_id``, the current row's run. Reads and
  writes are LOCAL_QUORUM, conditions LOCAL_SERIAL.
- Group commit: a conditional batch applies or fails as a whole, so `commit` runs each
  op as its own batch and maps each batch's outcome to its op. The ops run one after
  the other, in call order (a later op sees an earlier one): all of a shard's LWTs
  share one partition, hence one Paxos instance, and concurrent proposals there only
  contend (and, past the contention timeout, fail with an unknown outcome) — they do
  not overlap. Every batch carries the range check, so an op of a fenced host never
  lands; ShardOwnershipLost from any op is raised for the call (ops applied before the
  range moved were written by the owner of the time, as if by an earlier call).
- History: appended to the run's ``history_node`` partition before the batch, under a
  fresh transaction id, and visible only once the batch's HISTORY_TXN rows confirm
  it (`cql.py`, "transaction ids").
- Visibility rows of a committed op are written right after its batch (their tables
  are other partitions); a failure there is logged, not returned: the workflow write
  is already durable, as with Cadence's asynchronous visibility.
- Outcome unknown (a write timeout of a conditional batch): the op gets `Unavailable`;
  its conditions make the caller's retry (after reloading) safe.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import struct
import time
from collections.abc import Sequence

from cadence_fast.errors import BadRequestError
from cadence_fast.persistence.errors import (
    AlreadyExists,
    ConditionFailed,
    NotFound,
    SchemaError,
    ShardOwnershipLost,
    StoreError,
    Unavailable,
)
from cadence_fast.persistence.records import (
    CreateMode,
    CreateWorkflow,
    CurrentExecutionRecord,
    ExecutionRecord,
    HistoryBatch,
    ShardRecord,
    TimerTask,
    TransferTask,
    UpdateWorkflow,
    WorkflowState,
)
from cadence_fast_cassandra import cql, history, schema
from cadence_fast_cassandra.base import NO_LIMIT
from cadence_fast_cassandra.cql import KEY, QUEUE_PREFIX, RowType
from cadence_fast_cassandra.domains import DomainStore
from cadence_fast_cassandra.driver import Connection, Row, applied
from cadence_fast_cassandra.tasklists import TaskListStore
from cadence_fast_cassandra.visibility_store import VisibilityStore

log = logging.getLogger("cadence_fast.cassandra")

_INT64 = struct.Struct(">q")

_SHARD_COLS = "range_id, owner, transfer_ack_level, timer_ack_level, shard_data, shard_updated_at"
_EXEC_COLS = "next_event_id, state, close_status, create_request_id, start_time, info, " + ", ".join(
    cql.MAP_COLUMNS.values()
)
_CURRENT_COLS = (
    "current_run_id, current_state, current_close_status, current_create_request_id, current_start_time"
)


def _token_int(token: bytes | None, what: str) -> int | None:
    if not token:
        return None
    if len(token) != _INT64.size:
        raise BadRequestError(f"next_page_token is not a valid {what} page token")
    return int(_INT64.unpack(token)[0])


def _shard(shard_id: int, r: Row) -> ShardRecord:
    return ShardRecord(
        shard_id=shard_id,
        range_id=int(r["range_id"] or 0),
        owner=r["owner"] or "",
        transfer_ack_level=int(r["transfer_ack_level"] or 0),
        timer_ack_level=int(r["timer_ack_level"] or 0),
        data=r["shard_data"] or b"",
        updated_at=int(r["shard_updated_at"] or 0),
    )


def _current(r: Row) -> CurrentExecutionRecord:
    return CurrentExecutionRecord(
        run_id=r["current_run_id"],
        state=int(r["current_state"] or 0),
        close_status=int(r["current_close_status"] or 0),
        create_request_id=r["current_create_request_id"] or "",
        start_time=int(r["current_start_time"] or 0),
    )


def schema_message(found: int | None, expected: int, shown: str) -> SchemaError | None:
    """SchemaError naming the command that fixes a missing, outdated or newer schema (None: all good)."""
    if found is None:
        return SchemaError(
            f"no cadence-fast schema in {shown}; create it with `cadence-fast schema setup --store {shown}`"
        )
    if found < expected:
        return SchemaError(
            f"schema version {found} in {shown} is older than this cadence-fast's {expected}; "
            f"migrate it with `cadence-fast schema update --store {shown}`"
        )
    if found > expected:
        return SchemaError(
            f"schema version {found} in {shown} is newer than this cadence-fast (it knows {expected}); "
            "upgrade cadence-fast"
        )
    return None


class CassandraStore(DomainStore, TaskListStore, VisibilityStore):
    """The adapter: lifecycle, schema, shards, executions, history and the outbox here;
    domains, task lists and visibility in their own modules."""

    # --- lifecycle and schema -----------------------------------------------------------

    async def open(self, *, create_schema: bool = False) -> None:
        cfg = self._cfg()
        if self._conn is not None:
            return
        conn = await Connection.connect(cfg, None)
        try:
            if create_schema:
                await self._setup_on(conn)
            else:
                problem = schema_message(
                    await self._read_version(conn, cfg.keyspace), schema.SCHEMA_VERSION, cfg.redacted()
                )
                if problem is not None:
                    raise problem
                await asyncio.to_thread(conn.session.set_keyspace, cfg.keyspace)
        except BaseException:
            await conn.close()
            raise
        self._conn = conn

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            await conn.close()

    async def _keyspace_tables(self, conn: Connection, keyspace: str) -> set[str] | None:
        """The keyspace's table names, None if there is no such keyspace."""
        found = await conn.execute(
            "SELECT keyspace_name FROM system_schema.keyspaces WHERE keyspace_name = ?", (keyspace,)
        )
        if not found:
            return None
        rows = await conn.execute(
            "SELECT table_name FROM system_schema.tables WHERE keyspace_name = ?", (keyspace,)
        )
        return {r["table_name"] for r in rows}

    async def _read_version(self, conn: Connection, keyspace: str) -> int | None:
        tables = await self._keyspace_tables(conn, keyspace)
        if tables is None or "schema_version" not in tables:
            return None
        rows = await conn.execute(f"SELECT version FROM {keyspace}.schema_version WHERE id = 1")
        return int(rows[0]["version"]) if rows and rows[0]["version"] is not None else None

    async def schema_version(self) -> int | None:
        cfg = self._cfg()
        if self._conn is not None:
            return await self._read_version(self._conn, cfg.keyspace)
        conn = await Connection.connect(cfg, None)
        try:
            return await self._read_version(conn, cfg.keyspace)
        finally:
            await conn.close()

    async def setup_schema(self) -> int:
        """Create the keyspace (if the user may) and the tables, or migrate them; idempotent.

        Run it from one place at a time: Cassandra resolves concurrent CREATE TABLE of one
        name badly (two table ids), which is why the server never does this on its own.
        """
        if self._conn is not None:
            return await self._setup_on(self._conn)
        conn = await Connection.connect(self._cfg(), None)
        try:
            return await self._setup_on(conn)
        finally:
            await conn.close()

    async def _setup_on(self, conn: Connection) -> int:
        """setup_schema on a connection; leaves the session in the keyspace."""
        cfg = self._cfg()
        tables = await self._keyspace_tables(conn, cfg.keyspace)
        if tables is None:
            try:
                await conn.execute_plain(schema.create_keyspace(cfg.keyspace, cfg.replication()))
            except Unavailable:
                raise
            except StoreError as e:
                raise SchemaError(
                    f"keyspace {cfg.keyspace!r} does not exist and could not be created ({e}); "
                    "create it, then run `cadence-fast schema setup` again"
                ) from None
            log.info("created keyspace %s with replication %s", cfg.keyspace, cfg.replication())
        found = await self._read_version(conn, cfg.keyspace)
        if found is not None and found > schema.SCHEMA_VERSION:
            raise schema_message(found, schema.SCHEMA_VERSION, cfg.redacted()) or SchemaError("newer schema")
        if conn.session.keyspace != cfg.keyspace:
            await asyncio.to_thread(conn.session.set_keyspace, cfg.keyspace)
        for version in range((found or 0) + 1, schema.SCHEMA_VERSION + 1):
            for statement in schema.MIGRATIONS[version]:
                await conn.execute_plain(statement)
        if (found or 0) < schema.SCHEMA_VERSION:
            await conn.execute(
                "INSERT INTO schema_version (id, version, updated_at) VALUES (1, ?, ?)",
                (schema.SCHEMA_VERSION, time.time_ns()),
            )
        return schema.SCHEMA_VERSION

    # --- shards -------------------------------------------------------------------------------

    async def _read_shard(self, shard_id: int, serial: bool) -> ShardRecord | None:
        rows = await self._c().execute(
            f"SELECT {_SHARD_COLS} FROM executions WHERE {KEY}", cql.shard_key(shard_id), serial_read=serial
        )
        return _shard(shard_id, rows[0]) if rows and rows[0]["range_id"] is not None else None

    async def get_or_create_shard(self, shard_id: int) -> ShardRecord:
        found = await self._read_shard(shard_id, serial=True)
        if found is not None:
            return found
        # Two hosts may race to create it: the loser's insert does not apply; both read the winner's row.
        await self._c().execute(
            f"INSERT INTO executions ({cql.KEY_COLUMNS}, {_SHARD_COLS}) VALUES ({', '.join(['?'] * 13)}) IF NOT EXISTS",
            (*cql.shard_key(shard_id), 0, "", 0, 0, b"", time.time_ns()),
        )
        found = await self._read_shard(shard_id, serial=True)
        if found is None:
            raise Unavailable(f"shard {shard_id}: created but not readable yet")
        return found

    async def update_shard(self, shard: ShardRecord, previous_range_id: int) -> None:
        s = shard
        rows = await self._c().execute(
            "UPDATE executions SET range_id = ?, owner = ?, transfer_ack_level = ?, timer_ack_level = ?, "
            f"shard_data = ?, shard_updated_at = ? WHERE {KEY} IF range_id = ?",
            (
                s.range_id,
                s.owner,
                s.transfer_ack_level,
                s.timer_ack_level,
                s.data,
                s.updated_at,
                *cql.shard_key(s.shard_id),
                previous_range_id,
            ),
        )
        if not applied(rows):
            stored = rows[0].get("range_id") if rows else None
            raise ShardOwnershipLost(
                s.shard_id,
                f"shard {s.shard_id}: ownership lost (range_id is {'absent' if stored is None else stored}, "
                f"expected {previous_range_id})",
            )

    # --- executions ---------------------------------------------------------------------------

    async def commit(
        self, shard_id: int, range_id: int, ops: Sequence[CreateWorkflow | UpdateWorkflow]
    ) -> list[BaseException | None]:
        self._c()
        results: list[BaseException | None] = []
        # Workflows with an op of unknown outcome in this call: their later ops would be
        # conditioned on a state that may or may not be there, so they are not attempted.
        unknown: set[tuple[str, str]] = set()
        for op in ops:
            workflows = cql.workflows_of(op)
            if workflows & unknown:
                results.append(
                    Unavailable("not attempted: an earlier op of the workflow has an unknown outcome")
                )
                continue
            result = await self._apply(shard_id, range_id, op)  # raises ShardOwnershipLost
            if isinstance(result, Unavailable):
                unknown |= workflows
            results.append(result)
        return results

    async def _apply(
        self, shard_id: int, range_id: int, op: CreateWorkflow | UpdateWorkflow
    ) -> BaseException | None:
        """One op as one conditional batch; its error (ConditionFailed, AlreadyExists, ...) or None."""
        c = self._c()
        txn_id = secrets.randbits(63) or 1
        try:
            statements = cql.op_statements(shard_id, range_id, op, txn_id)
        except cql.ImpossibleCondition as e:
            return ConditionFailed(str(e))
        except ValueError as e:
            return StoreError(str(e))
        appends = cql.history_appends(op, txn_id)
        try:
            if appends:
                await asyncio.gather(*(c.execute(q, p) for q, p in appends))
            rows = await c.batch(statements)
        except Unavailable as e:
            return e  # the history nodes stay: the batch may have applied and confirmed them
        except StoreError as e:
            await self._cleanup(op, txn_id)
            return e
        if applied(rows):
            await self._write_visibility(op)
            return None
        await self._cleanup(op, txn_id)
        try:
            error = await self._why_not_applied(shard_id, range_id, op)
        except StoreError as e:
            # The batch surely did not apply; only the reason is unknown.
            return ConditionFailed(f"the conditional batch did not apply (reading why failed: {e})")
        if isinstance(error, ShardOwnershipLost):
            raise error
        return error

    async def _cleanup(self, op: CreateWorkflow | UpdateWorkflow, txn_id: int) -> None:
        """Delete the history nodes of a batch that surely failed (best effort: they are invisible anyway)."""
        deletes = cql.history_cleanup(op, txn_id)
        if deletes:
            try:
                await asyncio.gather(*(self._c().execute(q, p) for q, p in deletes))
            except StoreError as e:
                log.debug("leaving orphan history nodes of txn %d: %s", txn_id, e)

    async def _write_visibility(self, op: CreateWorkflow | UpdateWorkflow) -> None:
        records = [op.visibility]
        if isinstance(op, UpdateWorkflow) and op.new_run is not None:
            records.append(op.new_run.visibility)
        for record in records:
            if record is None:
                continue
            try:
                await self.upsert_visibility(record)
            except StoreError as e:
                log.warning("visibility of run %s not recorded (the workflow write is): %s", record.run_id, e)

    async def _read_current(
        self, shard_id: int, domain_id: str, workflow_id: str, serial: bool
    ) -> CurrentExecutionRecord | None:
        rows = await self._c().execute(
            f"SELECT {_CURRENT_COLS} FROM executions WHERE {KEY}",
            cql.current_key(shard_id, domain_id, workflow_id),
            serial_read=serial,
        )
        return _current(rows[0]) if rows and rows[0]["current_run_id"] is not None else None

    async def _read_next_event_id(
        self, shard_id: int, domain_id: str, workflow_id: str, run_id: str
    ) -> int | None:
        rows = await self._c().execute(
            f"SELECT next_event_id FROM executions WHERE {KEY}",
            cql.execution_key(shard_id, domain_id, workflow_id, run_id),
            serial_read=True,
        )
        return int(rows[0]["next_event_id"]) if rows and rows[0]["next_event_id"] is not None else None

    async def _why_not_applied(
        self, shard_id: int, range_id: int, op: CreateWorkflow | UpdateWorkflow
    ) -> StoreError:
        """Which condition of a batch that did not apply failed (Paxos reads of the rows it names)."""
        shard = await self._read_shard(shard_id, serial=True)
        if shard is None or shard.range_id != range_id:
            stored = "absent" if shard is None else shard.range_id
            return ShardOwnershipLost(
                shard_id, f"shard {shard_id}: ownership lost (range_id is {stored}, writer has {range_id})"
            )
        if isinstance(op, CreateWorkflow):
            return await self._why_create_failed(shard_id, op, None)
        found = await self._read_next_event_id(shard_id, op.domain_id, op.workflow_id, op.run_id)
        if found is None:
            return ConditionFailed(f"run {op.run_id!r} of workflow {op.workflow_id!r} does not exist")
        if found != op.condition_next_event_id:
            return ConditionFailed(
                f"run {op.run_id!r}: next_event_id is {found}, the update expected {op.condition_next_event_id}"
            )
        if op.update_current:
            current = await self._read_current(shard_id, op.domain_id, op.workflow_id, serial=True)
            if current is None or current.run_id != op.run_id:
                named = current.run_id if current else "none"
                return ConditionFailed(
                    f"workflow {op.workflow_id!r}: current run is {named}, not {op.run_id!r}"
                )
        if op.new_run is not None:
            return await self._why_create_failed(shard_id, op.new_run, op.new_run.previous_run_id)
        return ConditionFailed(
            f"run {op.run_id!r}: a concurrent write changed the rows this update is conditioned on"
        )

    async def _why_create_failed(
        self, shard_id: int, op: CreateWorkflow, continued: str | None
    ) -> StoreError:
        s = op.snapshot
        current = await self._read_current(shard_id, s.domain_id, s.workflow_id, serial=True)
        named = current.run_id if current else "none"
        if continued is None and op.mode == CreateMode.BRAND_NEW:
            if current is not None:
                return AlreadyExists(
                    f"workflow {s.workflow_id!r} already has a current run {current.run_id!r}",
                    current=current,
                )
        elif current is None or current.run_id != (continued or op.previous_run_id):
            return ConditionFailed(
                f"workflow {s.workflow_id!r}: current run is {named}, not the previous run {continued or op.previous_run_id!r}"
            )
        elif (
            continued is None
            and op.mode == CreateMode.WORKFLOW_ID_REUSE
            and current.state != WorkflowState.COMPLETED
        ):
            return ConditionFailed(
                f"workflow {s.workflow_id!r}: previous run {current.run_id!r} is still open"
            )
        if await self._read_next_event_id(shard_id, s.domain_id, s.workflow_id, s.run_id) is not None:
            return AlreadyExists(f"run {s.run_id!r} of workflow {s.workflow_id!r} already exists")
        return ConditionFailed(
            f"workflow {s.workflow_id!r}: a concurrent write changed the rows this create is conditioned on"
        )

    async def get_execution(
        self, shard_id: int, domain_id: str, workflow_id: str, run_id: str
    ) -> ExecutionRecord:
        rows = await self._c().execute(
            f"SELECT {_EXEC_COLS} FROM executions WHERE {KEY}",
            cql.execution_key(shard_id, domain_id, workflow_id, run_id),
        )
        if not rows or rows[0]["next_event_id"] is None:
            raise NotFound(f"run {run_id} of workflow {workflow_id!r} does not exist")
        r = rows[0]
        maps = {kind: dict(r[column]) for kind, column in cql.MAP_COLUMNS.items() if r[column]}
        return ExecutionRecord(
            domain_id=domain_id,
            workflow_id=workflow_id,
            run_id=run_id,
            next_event_id=int(r["next_event_id"]),
            state=int(r["state"] or 0),
            close_status=int(r["close_status"] or 0),
            create_request_id=r["create_request_id"] or "",
            start_time=int(r["start_time"] or 0),
            info=r["info"] or b"",
            maps=maps,
        )

    async def get_current_execution(
        self, shard_id: int, domain_id: str, workflow_id: str
    ) -> CurrentExecutionRecord:
        current = await self._read_current(shard_id, domain_id, workflow_id, serial=False)
        if current is None:
            raise NotFound(f"workflow {workflow_id!r} has no current run")
        return current

    async def delete_execution(self, shard_id: int, domain_id: str, workflow_id: str, run_id: str) -> None:
        c = self._c()
        await c.batch(
            [
                (
                    f"DELETE FROM executions WHERE {KEY}",
                    cql.execution_key(shard_id, domain_id, workflow_id, run_id),
                ),
                (
                    f"DELETE FROM executions WHERE {cql.HISTORY_TXN_PREFIX}",
                    cql.history_txn_prefix(shard_id, domain_id, workflow_id, run_id),
                ),
            ]
        )
        await c.execute(
            f"DELETE FROM executions WHERE {KEY} IF current_run_id = ?",
            (*cql.current_key(shard_id, domain_id, workflow_id), run_id),
        )
        await c.execute(
            "DELETE FROM history_node WHERE domain_id = ? AND workflow_id = ? AND run_id = ?",
            (domain_id, workflow_id, run_id),
        )

    # --- history ------------------------------------------------------------------------------

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
        c = self._c()
        after = _token_int(next_page_token, "history")
        prefix = cql.history_txn_prefix(shard_id, domain_id, workflow_id, run_id)
        if after is not None:
            start = after + 1
        elif min_event_id <= 1:
            start = min_event_id  # the first batch starts at event 1: nothing to seek
        else:
            # Seek to the batch holding min_event_id: the last confirmed node at or before it.
            seek = await c.execute(
                f"SELECT task_id FROM executions WHERE {cql.HISTORY_TXN_PREFIX} AND task_id <= ? "
                "ORDER BY type DESC, domain_id DESC, workflow_id DESC, run_id DESC, visibility_ts DESC, task_id DESC "
                "LIMIT 1",
                (*prefix, min_event_id),
            )
            start = int(seek[0]["task_id"]) if seek else min_event_id
        limit = page_size + 1 if page_size > 0 else NO_LIMIT
        while True:
            confirmed = await c.execute(
                "SELECT task_id, history_txn_id, history_last_event_id FROM executions "
                f"WHERE {cql.HISTORY_TXN_PREFIX} AND task_id >= ? AND task_id < ? LIMIT ?",
                (*prefix, start, max_event_id, limit),
            )
            page, after_node = history.pick_page(confirmed, min_event_id, page_size)
            if page or after_node is None:
                break
            start = after_node + 1  # the page held only the batch before min_event_id: read on
        if not page:
            return [], None
        nodes = await c.execute(
            "SELECT node_id, txn_id, data FROM history_node WHERE domain_id = ? AND workflow_id = ? AND run_id = ? "
            "AND node_id >= ? AND node_id <= ?",
            (domain_id, workflow_id, run_id, page[0].node_id, page[-1].node_id),
        )
        batches = history.assemble(page, nodes, run_id)
        return batches, (_INT64.pack(after_node) if after_node is not None else None)

    # --- queues (the outbox) ------------------------------------------------------------------

    async def get_transfer_tasks(
        self, shard_id: int, min_task_id: int, max_task_id: int, limit: int
    ) -> list[TransferTask]:
        rows = await self._c().execute(
            "SELECT task_id, task_type, task_domain_id, task_workflow_id, task_run_id, task_data, task_visibility_time "
            f"FROM executions WHERE {QUEUE_PREFIX} AND visibility_ts = 0 AND task_id > ? AND task_id <= ? LIMIT ?",
            (
                *cql.queue_prefix(shard_id, RowType.TRANSFER),
                min_task_id,
                max_task_id,
                limit if limit > 0 else NO_LIMIT,
            ),
        )
        return [
            TransferTask(
                int(r["task_id"]),
                int(r["task_type"] or 0),
                r["task_domain_id"] or "",
                r["task_workflow_id"] or "",
                r["task_run_id"] or "",
                r["task_data"] or b"",
                int(r["task_visibility_time"] or 0),
            )
            for r in rows
        ]

    async def get_timer_tasks(
        self, shard_id: int, min_time: int, min_task_id: int, max_time: int, limit: int
    ) -> list[TimerTask]:
        if min_time >= max_time:
            return []
        c = self._c()
        prefix = cql.queue_prefix(shard_id, RowType.TIMER)
        n = limit if limit > 0 else NO_LIMIT
        columns = (
            "visibility_ts, task_id, task_type, task_domain_id, task_workflow_id, task_run_id, task_data"
        )
        # (time, id) >= (min_time, min_task_id) AND time < max_time, as two plain slices (the
        # rows at min_time from min_task_id on, then the later times): no multi-column
        # relations, which some Cassandra versions refuse next to equality restrictions.
        first, later = await asyncio.gather(
            c.execute(
                f"SELECT {columns} FROM executions WHERE {QUEUE_PREFIX} AND visibility_ts = ? AND task_id >= ? LIMIT ?",
                (*prefix, min_time, min_task_id, n),
            ),
            c.execute(
                f"SELECT {columns} FROM executions WHERE {QUEUE_PREFIX} AND visibility_ts > ? AND visibility_ts < ? "
                "LIMIT ?",
                (*prefix, min_time, max_time, n),
            ),
        )
        return [
            TimerTask(
                int(r["visibility_ts"]),
                int(r["task_id"]),
                int(r["task_type"] or 0),
                r["task_domain_id"] or "",
                r["task_workflow_id"] or "",
                r["task_run_id"] or "",
                r["task_data"] or b"",
            )
            for r in (first + later)[:n]
        ]

    async def complete_transfer_task(self, shard_id: int, task_id: int) -> None:
        await self._c().execute(f"DELETE FROM executions WHERE {KEY}", cql.transfer_key(shard_id, task_id))

    async def complete_transfer_tasks(self, shard_id: int, up_to_task_id: int) -> None:
        await self._c().execute(
            f"DELETE FROM executions WHERE {QUEUE_PREFIX} AND visibility_ts = 0 AND task_id <= ?",
            (*cql.queue_prefix(shard_id, RowType.TRANSFER), up_to_task_id),
        )

    async def complete_timer_task(self, shard_id: int, visibility_time: int, task_id: int) -> None:
        await self._c().execute(
            f"DELETE FROM executions WHERE {KEY}", cql.timer_key(shard_id, visibility_time, task_id)
        )

    async def complete_timer_tasks(self, shard_id: int, before_time: int) -> None:
        await self._c().execute(
            f"DELETE FROM executions WHERE {QUEUE_PREFIX} AND visibility_ts < ?",
            (*cql.queue_prefix(shard_id, RowType.TIMER), before_time),
        )
