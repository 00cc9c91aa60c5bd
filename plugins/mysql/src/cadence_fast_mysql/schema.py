"""The MySQL / MariaDB schema, versioned: one list of DDL statements per version.

Same tables and columns as the SQLite and PostgreSQL schemas. Valid on MySQL 8 and
MariaDB 10.11 alike: indexes are declared inside CREATE TABLE (MySQL has no
`CREATE INDEX IF NOT EXISTS`), every statement is idempotent (MySQL DDL is not
transactional, so a setup interrupted half-way is finished by running it again), and
the schema_version row is written last.

Identifiers compare byte-wise (utf8mb4_bin): workflow ids "A" and "a" are different
workflows, as in Cadence. Key columns are VARCHAR(255) as in Cadence's MySQL schema,
domain and run ids (UUIDs) VARCHAR(64), so the composite keys fit InnoDB's 3072-byte index limit.
"""

from __future__ import annotations

SCHEMA_VERSION = 1

_TABLE = "ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin"
_ID = "VARCHAR(255) NOT NULL"
_UUID = "VARCHAR(64) NOT NULL"  # domain and run ids (UUIDs)

_V1 = [
    f"""CREATE TABLE IF NOT EXISTS schema_version (
        id INT NOT NULL PRIMARY KEY,
        version INT NOT NULL,
        updated_at BIGINT NOT NULL) {_TABLE}""",
    f"""CREATE TABLE IF NOT EXISTS domain_metadata (
        id INT NOT NULL PRIMARY KEY,
        notification_version BIGINT NOT NULL) {_TABLE}""",
    "INSERT INTO domain_metadata (id, notification_version) VALUES (1, 0) ON DUPLICATE KEY UPDATE id = id",
    f"""CREATE TABLE IF NOT EXISTS domains (
        domain_id {_UUID},
        name {_ID},
        status INT NOT NULL,
        data LONGBLOB NOT NULL,
        notification_version BIGINT NOT NULL,
        PRIMARY KEY (domain_id),
        UNIQUE KEY domains_by_name (name)) {_TABLE}""",
    f"""CREATE TABLE IF NOT EXISTS shards (
        shard_id INT NOT NULL PRIMARY KEY,
        range_id BIGINT NOT NULL,
        owner VARCHAR(255) NOT NULL,
        transfer_ack_level BIGINT NOT NULL,
        timer_ack_level BIGINT NOT NULL,
        data LONGBLOB NOT NULL,
        updated_at BIGINT NOT NULL) {_TABLE}""",
    f"""CREATE TABLE IF NOT EXISTS executions (
        shard_id INT NOT NULL,
        domain_id {_UUID},
        workflow_id {_ID},
        run_id {_UUID},
        next_event_id BIGINT NOT NULL,
        state INT NOT NULL,
        close_status INT NOT NULL,
        create_request_id VARCHAR(255) NOT NULL,
        start_time BIGINT NOT NULL,
        info LONGBLOB NOT NULL,
        PRIMARY KEY (shard_id, domain_id, workflow_id, run_id)) {_TABLE}""",
    f"""CREATE TABLE IF NOT EXISTS current_executions (
        shard_id INT NOT NULL,
        domain_id {_UUID},
        workflow_id {_ID},
        run_id {_UUID},
        state INT NOT NULL,
        close_status INT NOT NULL,
        create_request_id VARCHAR(255) NOT NULL,
        start_time BIGINT NOT NULL,
        PRIMARY KEY (shard_id, domain_id, workflow_id)) {_TABLE}""",
    f"""CREATE TABLE IF NOT EXISTS execution_maps (
        shard_id INT NOT NULL,
        domain_id {_UUID},
        workflow_id {_ID},
        run_id {_UUID},
        kind SMALLINT NOT NULL,
        map_key {_ID},
        value LONGBLOB NOT NULL,
        PRIMARY KEY (shard_id, domain_id, workflow_id, run_id, kind, map_key)) {_TABLE}""",
    f"""CREATE TABLE IF NOT EXISTS history_batches (
        shard_id INT NOT NULL,
        domain_id {_UUID},
        workflow_id {_ID},
        run_id {_UUID},
        first_event_id BIGINT NOT NULL,
        last_event_id BIGINT NOT NULL,
        data LONGBLOB NOT NULL,
        PRIMARY KEY (shard_id, domain_id, workflow_id, run_id, first_event_id)) {_TABLE}""",
    f"""CREATE TABLE IF NOT EXISTS transfer_tasks (
        shard_id INT NOT NULL,
        task_id BIGINT NOT NULL,
        task_type INT NOT NULL,
        domain_id {_UUID},
        workflow_id {_ID},
        run_id {_UUID},
        data LONGBLOB NOT NULL,
        visibility_time BIGINT NOT NULL,
        PRIMARY KEY (shard_id, task_id)) {_TABLE}""",
    f"""CREATE TABLE IF NOT EXISTS timer_tasks (
        shard_id INT NOT NULL,
        visibility_time BIGINT NOT NULL,
        task_id BIGINT NOT NULL,
        task_type INT NOT NULL,
        domain_id {_UUID},
        workflow_id {_ID},
        run_id {_UUID},
        data LONGBLOB NOT NULL,
        PRIMARY KEY (shard_id, visibility_time, task_id)) {_TABLE}""",
    f"""CREATE TABLE IF NOT EXISTS task_lists (
        domain_id {_UUID},
        name {_ID},
        task_type INT NOT NULL,
        kind INT NOT NULL,
        range_id BIGINT NOT NULL,
        ack_level BIGINT NOT NULL,
        data LONGBLOB NOT NULL,
        updated_at BIGINT NOT NULL,
        PRIMARY KEY (domain_id, name, task_type)) {_TABLE}""",
    f"""CREATE TABLE IF NOT EXISTS tasks (
        domain_id {_UUID},
        name {_ID},
        task_type INT NOT NULL,
        task_id BIGINT NOT NULL,
        data LONGBLOB NOT NULL,
        created_time BIGINT NOT NULL,
        expiry_time BIGINT NOT NULL,
        PRIMARY KEY (domain_id, name, task_type, task_id)) {_TABLE}""",
    f"""CREATE TABLE IF NOT EXISTS executions_visibility (
        domain_id {_UUID},
        run_id {_UUID},
        workflow_id {_ID},
        workflow_type {_ID},
        start_time BIGINT NOT NULL,
        execution_time BIGINT NOT NULL,
        close_time BIGINT NULL,
        close_status INT NULL,
        history_length BIGINT NOT NULL,
        task_list {_ID},
        is_cron TINYINT NOT NULL,
        memo LONGBLOB NOT NULL,
        search_attributes LONGTEXT NOT NULL,
        update_time BIGINT NOT NULL,
        PRIMARY KEY (domain_id, run_id),
        KEY executions_visibility_by_status (domain_id, close_status, start_time, run_id),
        KEY executions_visibility_by_close_time (domain_id, close_time, run_id),
        KEY executions_visibility_by_start_time (domain_id, start_time, run_id),
        KEY executions_visibility_by_type (domain_id, workflow_type, start_time),
        KEY executions_visibility_by_workflow_id (domain_id, workflow_id, start_time)) {_TABLE}""",
]

#: version -> the statements that bring version-1 to version.
MIGRATIONS: dict[int, list[str]] = {1: _V1}
