"""The SQLite schema, versioned: one list of DDL statements per version.

`setup(conn)` brings any older database up to `SCHEMA_VERSION` in one transaction;
a database newer than this code is refused (SchemaError naming both versions).
The visibility table's name and columns are shared with the query compiler
(`cadence_fast.persistence.sqlvisibility`) and the PostgreSQL/MySQL plugins: keep them.
"""

from __future__ import annotations

import sqlite3
import time

from cadence_fast.persistence.errors import SchemaError

SCHEMA_VERSION = 1

# Large blobs (history batches up to 2 MB, mutable-state info and maps) live in rowid
# tables with the natural key as a unique index: SQLite advises WITHOUT ROWID only for
# rows far smaller than a page. The queues (small rows, written and deleted on every
# transition) are WITHOUT ROWID: one b-tree to touch instead of two.
_V1 = [
    """CREATE TABLE schema_version (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        version INTEGER NOT NULL,
        updated_at INTEGER NOT NULL)""",
    # The domain metadata version: one row, bumped by every domain write.
    """CREATE TABLE domain_metadata (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        notification_version INTEGER NOT NULL)""",
    "INSERT INTO domain_metadata (id, notification_version) VALUES (1, 0)",
    """CREATE TABLE domains (
        domain_id TEXT PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        status INTEGER NOT NULL,
        data BLOB NOT NULL,
        notification_version INTEGER NOT NULL)""",
    """CREATE TABLE shards (
        shard_id INTEGER PRIMARY KEY,
        range_id INTEGER NOT NULL,
        owner TEXT NOT NULL,
        transfer_ack_level INTEGER NOT NULL,
        timer_ack_level INTEGER NOT NULL,
        data BLOB NOT NULL,
        updated_at INTEGER NOT NULL)""",
    """CREATE TABLE executions (
        shard_id INTEGER NOT NULL,
        domain_id TEXT NOT NULL,
        workflow_id TEXT NOT NULL,
        run_id TEXT NOT NULL,
        next_event_id INTEGER NOT NULL,
        state INTEGER NOT NULL,
        close_status INTEGER NOT NULL,
        create_request_id TEXT NOT NULL,
        start_time INTEGER NOT NULL,
        info BLOB NOT NULL,
        PRIMARY KEY (shard_id, domain_id, workflow_id, run_id))""",
    """CREATE TABLE current_executions (
        shard_id INTEGER NOT NULL,
        domain_id TEXT NOT NULL,
        workflow_id TEXT NOT NULL,
        run_id TEXT NOT NULL,
        state INTEGER NOT NULL,
        close_status INTEGER NOT NULL,
        create_request_id TEXT NOT NULL,
        start_time INTEGER NOT NULL,
        PRIMARY KEY (shard_id, domain_id, workflow_id)) WITHOUT ROWID""",
    # Mutable-state maps (MapKind) as rows: an update writes only the entries it changed.
    """CREATE TABLE execution_maps (
        shard_id INTEGER NOT NULL,
        domain_id TEXT NOT NULL,
        workflow_id TEXT NOT NULL,
        run_id TEXT NOT NULL,
        kind INTEGER NOT NULL,
        key TEXT NOT NULL,
        value BLOB NOT NULL,
        PRIMARY KEY (shard_id, domain_id, workflow_id, run_id, kind, key))""",
    """CREATE TABLE history_batches (
        shard_id INTEGER NOT NULL,
        domain_id TEXT NOT NULL,
        workflow_id TEXT NOT NULL,
        run_id TEXT NOT NULL,
        first_event_id INTEGER NOT NULL,
        last_event_id INTEGER NOT NULL,
        data BLOB NOT NULL,
        PRIMARY KEY (shard_id, domain_id, workflow_id, run_id, first_event_id))""",
    """CREATE TABLE transfer_tasks (
        shard_id INTEGER NOT NULL,
        task_id INTEGER NOT NULL,
        task_type INTEGER NOT NULL,
        domain_id TEXT NOT NULL,
        workflow_id TEXT NOT NULL,
        run_id TEXT NOT NULL,
        data BLOB NOT NULL,
        visibility_time INTEGER NOT NULL,
        PRIMARY KEY (shard_id, task_id)) WITHOUT ROWID""",
    """CREATE TABLE timer_tasks (
        shard_id INTEGER NOT NULL,
        visibility_time INTEGER NOT NULL,
        task_id INTEGER NOT NULL,
        task_type INTEGER NOT NULL,
        domain_id TEXT NOT NULL,
        workflow_id TEXT NOT NULL,
        run_id TEXT NOT NULL,
        data BLOB NOT NULL,
        PRIMARY KEY (shard_id, visibility_time, task_id)) WITHOUT ROWID""",
    """CREATE TABLE task_lists (
        domain_id TEXT NOT NULL,
        name TEXT NOT NULL,
        task_type INTEGER NOT NULL,
        kind INTEGER NOT NULL,
        range_id INTEGER NOT NULL,
        ack_level INTEGER NOT NULL,
        data BLOB NOT NULL,
        updated_at INTEGER NOT NULL,
        PRIMARY KEY (domain_id, name, task_type)) WITHOUT ROWID""",
    """CREATE TABLE tasks (
        domain_id TEXT NOT NULL,
        name TEXT NOT NULL,
        task_type INTEGER NOT NULL,
        task_id INTEGER NOT NULL,
        data BLOB NOT NULL,
        created_time INTEGER NOT NULL,
        expiry_time INTEGER NOT NULL,
        PRIMARY KEY (domain_id, name, task_type, task_id)) WITHOUT ROWID""",
    """CREATE TABLE executions_visibility (
        domain_id TEXT NOT NULL,
        run_id TEXT NOT NULL,
        workflow_id TEXT NOT NULL,
        workflow_type TEXT NOT NULL,
        start_time INTEGER NOT NULL,
        execution_time INTEGER NOT NULL,
        close_time INTEGER,
        close_status INTEGER,
        history_length INTEGER NOT NULL,
        task_list TEXT NOT NULL,
        is_cron INTEGER NOT NULL,
        memo BLOB NOT NULL,
        search_attributes TEXT NOT NULL,
        update_time INTEGER NOT NULL,
        PRIMARY KEY (domain_id, run_id))""",
    # Visibility indexes serve the listings of Cadence's API (mirroring its SQL schema).
    # Every key column is ascending and ends with run_id, the compiler's tiebreak, so
    # one index serves both directions (SQLite scans it backwards for DESC, DESC).
    "CREATE INDEX executions_visibility_by_start ON executions_visibility (domain_id, start_time, run_id)",
    "CREATE INDEX executions_visibility_by_close ON executions_visibility (domain_id, close_time, run_id)",
    """CREATE INDEX executions_visibility_by_type_start
        ON executions_visibility (domain_id, workflow_type, start_time, run_id)""",
    """CREATE INDEX executions_visibility_by_type_close
        ON executions_visibility (domain_id, workflow_type, close_time, run_id)""",
    """CREATE INDEX executions_visibility_by_workflow_id
        ON executions_visibility (domain_id, workflow_id, start_time, run_id)""",
    """CREATE INDEX executions_visibility_by_status_close
        ON executions_visibility (domain_id, close_status, close_time, run_id)""",
    # Open runs (ListOpenWorkflowExecutions: CloseTime missing): partial indexes stay as
    # small as the set of open runs, however many closed ones accumulate.
    """CREATE INDEX executions_visibility_open_by_start
        ON executions_visibility (domain_id, start_time, run_id) WHERE close_time IS NULL""",
    """CREATE INDEX executions_visibility_open_by_type
        ON executions_visibility (domain_id, workflow_type, start_time, run_id) WHERE close_time IS NULL""",
]

#: version -> the statements that bring version-1 to version.
MIGRATIONS: dict[int, list[str]] = {1: _V1}


def read_version(conn: sqlite3.Connection) -> int | None:
    """The recorded schema version; None when the database holds no schema."""
    row = conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'"
    ).fetchone()
    if row is None:
        return None
    row = conn.execute("SELECT version FROM schema_version WHERE id = 1").fetchone()
    return None if row is None else int(row[0])


def check_not_newer(version: int | None, where: str) -> None:
    if version is not None and version > SCHEMA_VERSION:
        raise SchemaError(
            f"{where}: database schema version {version} is newer than this cadence-fast "
            f"(it knows schema version {SCHEMA_VERSION}); upgrade cadence-fast"
        )


def setup(conn: sqlite3.Connection, where: str) -> int:
    """Create or migrate the schema in one transaction; return the version in place."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        version = read_version(conn)
        check_not_newer(version, where)
        start = version or 0
        for v in range(start + 1, SCHEMA_VERSION + 1):
            for statement in MIGRATIONS[v]:
                conn.execute(statement)
        if start < SCHEMA_VERSION:
            conn.execute(
                "INSERT OR REPLACE INTO schema_version (id, version, updated_at) VALUES (1, ?, ?)",
                (SCHEMA_VERSION, time.time_ns()),
            )
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return SCHEMA_VERSION
