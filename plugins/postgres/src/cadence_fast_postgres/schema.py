"""The PostgreSQL schema, versioned: one list of DDL statements per version.

Same tables and columns as the built-in SQLite schema
(`cadence_fast.persistence.sqlite.schema`) except `execution_maps.map_key` (`key` is
reserved in MySQL, and the two SQL plugins share their statements). PostgreSQL DDL is
transactional, so a migration is all-or-nothing; its statements are idempotent too,
so re-running a version's migration (a lost schema_version row) does no harm.
"""

from __future__ import annotations

SCHEMA_VERSION = 1

_V1 = [
    """CREATE TABLE IF NOT EXISTS schema_version (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        version INTEGER NOT NULL,
        updated_at BIGINT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS domain_metadata (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        notification_version BIGINT NOT NULL)""",
    "INSERT INTO domain_metadata (id, notification_version) VALUES (1, 0) ON CONFLICT (id) DO NOTHING",
    """CREATE TABLE IF NOT EXISTS domains (
        domain_id TEXT PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        status INTEGER NOT NULL,
        data BYTEA NOT NULL,
        notification_version BIGINT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS shards (
        shard_id INTEGER PRIMARY KEY,
        range_id BIGINT NOT NULL,
        owner TEXT NOT NULL,
        transfer_ack_level BIGINT NOT NULL,
        timer_ack_level BIGINT NOT NULL,
        data BYTEA NOT NULL,
        updated_at BIGINT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS executions (
        shard_id INTEGER NOT NULL,
        domain_id TEXT NOT NULL,
        workflow_id TEXT NOT NULL,
        run_id TEXT NOT NULL,
        next_event_id BIGINT NOT NULL,
        state INTEGER NOT NULL,
        close_status INTEGER NOT NULL,
        create_request_id TEXT NOT NULL,
        start_time BIGINT NOT NULL,
        info BYTEA NOT NULL,
        PRIMARY KEY (shard_id, domain_id, workflow_id, run_id))""",
    """CREATE TABLE IF NOT EXISTS current_executions (
        shard_id INTEGER NOT NULL,
        domain_id TEXT NOT NULL,
        workflow_id TEXT NOT NULL,
        run_id TEXT NOT NULL,
        state INTEGER NOT NULL,
        close_status INTEGER NOT NULL,
        create_request_id TEXT NOT NULL,
        start_time BIGINT NOT NULL,
        PRIMARY KEY (shard_id, domain_id, workflow_id))""",
    """CREATE TABLE IF NOT EXISTS execution_maps (
        shard_id INTEGER NOT NULL,
        domain_id TEXT NOT NULL,
        workflow_id TEXT NOT NULL,
        run_id TEXT NOT NULL,
        kind SMALLINT NOT NULL,
        map_key TEXT NOT NULL,
        value BYTEA NOT NULL,
        PRIMARY KEY (shard_id, domain_id, workflow_id, run_id, kind, map_key))""",
    """CREATE TABLE IF NOT EXISTS history_batches (
        shard_id INTEGER NOT NULL,
        domain_id TEXT NOT NULL,
        workflow_id TEXT NOT NULL,
        run_id TEXT NOT NULL,
        first_event_id BIGINT NOT NULL,
        last_event_id BIGINT NOT NULL,
        data BYTEA NOT NULL,
        PRIMARY KEY (shard_id, domain_id, workflow_id, run_id, first_event_id))""",
    """CREATE TABLE IF NOT EXISTS transfer_tasks (
        shard_id INTEGER NOT NULL,
        task_id BIGINT NOT NULL,
        task_type INTEGER NOT NULL,
        domain_id TEXT NOT NULL,
        workflow_id TEXT NOT NULL,
        run_id TEXT NOT NULL,
        data BYTEA NOT NULL,
        visibility_time BIGINT NOT NULL,
        PRIMARY KEY (shard_id, task_id))""",
    """CREATE TABLE IF NOT EXISTS timer_tasks (
        shard_id INTEGER NOT NULL,
        visibility_time BIGINT NOT NULL,
        task_id BIGINT NOT NULL,
        task_type INTEGER NOT NULL,
        domain_id TEXT NOT NULL,
        workflow_id TEXT NOT NULL,
        run_id TEXT NOT NULL,
        data BYTEA NOT NULL,
        PRIMARY KEY (shard_id, visibility_time, task_id))""",
    """CREATE TABLE IF NOT EXISTS task_lists (
        domain_id TEXT NOT NULL,
        name TEXT NOT NULL,
        task_type INTEGER NOT NULL,
        kind INTEGER NOT NULL,
        range_id BIGINT NOT NULL,
        ack_level BIGINT NOT NULL,
        data BYTEA NOT NULL,
        updated_at BIGINT NOT NULL,
        PRIMARY KEY (domain_id, name, task_type))""",
    """CREATE TABLE IF NOT EXISTS tasks (
        domain_id TEXT NOT NULL,
        name TEXT NOT NULL,
        task_type INTEGER NOT NULL,
        task_id BIGINT NOT NULL,
        data BYTEA NOT NULL,
        created_time BIGINT NOT NULL,
        expiry_time BIGINT NOT NULL,
        PRIMARY KEY (domain_id, name, task_type, task_id))""",
    """CREATE TABLE IF NOT EXISTS executions_visibility (
        domain_id TEXT NOT NULL,
        run_id TEXT NOT NULL,
        workflow_id TEXT NOT NULL,
        workflow_type TEXT NOT NULL,
        start_time BIGINT NOT NULL,
        execution_time BIGINT NOT NULL,
        close_time BIGINT,
        close_status INTEGER,
        history_length BIGINT NOT NULL,
        task_list TEXT NOT NULL,
        is_cron SMALLINT NOT NULL,
        memo BYTEA NOT NULL,
        search_attributes TEXT NOT NULL,
        update_time BIGINT NOT NULL,
        PRIMARY KEY (domain_id, run_id))""",
    """CREATE INDEX IF NOT EXISTS executions_visibility_by_status
        ON executions_visibility (domain_id, close_status, start_time DESC, run_id)""",
    """CREATE INDEX IF NOT EXISTS executions_visibility_by_close_time
        ON executions_visibility (domain_id, close_time DESC, run_id)""",
    """CREATE INDEX IF NOT EXISTS executions_visibility_by_start_time
        ON executions_visibility (domain_id, start_time DESC, run_id)""",
    """CREATE INDEX IF NOT EXISTS executions_visibility_by_type
        ON executions_visibility (domain_id, workflow_type, start_time DESC)""",
    """CREATE INDEX IF NOT EXISTS executions_visibility_by_workflow_id
        ON executions_visibility (domain_id, workflow_id, start_time DESC)""",
]

#: version -> the statements that bring version-1 to version.
MIGRATIONS: dict[int, list[str]] = {1: _V1}
