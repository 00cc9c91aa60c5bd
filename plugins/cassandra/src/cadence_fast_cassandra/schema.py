"""The Cassandra schema, versioned: one list of CQL DDL statements per version.

Data model (Cadence's Cassandra schema, server-brief §3 "Cassandra key idea"):

``executions`` — partition key ``shard_id`` only, so every row of a shard lives in one
partition and a shard's write is ONE conditional (LWT) batch on it. Rows are told apart
by ``type`` (see `cql.RowType`) and sentinel clustering keys:

    type        domain_id  workflow_id  run_id    visibility_ts  task_id
    SHARD       sentinel   sentinel     sentinel  0              0        range_id, owner, ack levels
    EXECUTION   domain     workflow     run       0              0        next_event_id, state, info, maps
    CURRENT     domain     workflow     sentinel  0              0        current_run_id, state, ...
    TRANSFER    sentinel   sentinel     sentinel  0              task id  the task's own ids, data
    TIMER       sentinel   sentinel     sentinel  fire time ns   task id  the task's own ids, data
    HISTORY_TXN domain     workflow     run       0              node id  txn id, last event id

The mutable-state maps are CQL ``map<text, blob>`` columns of the execution row (one per
MapKind), so an update adds/removes only the entries that changed.

``history_node`` — one partition per run; a row per (node id = first event id of the
batch, transaction id). Appended BEFORE the conditional batch; visible only when the
batch that committed that transaction wrote the matching HISTORY_TXN row (see
`cql.py`, "transaction ids").

``tasks`` — one partition per task list (domain, name, type): the task list row
(``row_type`` 0: range_id lease, ack level) and its backlog tasks (``row_type`` 1), so
creating tasks is one conditional batch ``IF range_id = ?`` on that partition.
``task_lists_by_domain`` lists a domain's task lists.

``domains`` (id -> name) and ``domains_by_name`` (one partition, clustered by name, so
listing is in name order; the static column ``metadata_version`` is bumped by every
domain write in the same conditional batch).

Visibility (Cadence's Cassandra visibility shape): ``visibility_by_start`` (every run,
clustered by start time), ``visibility_by_close`` (closed runs, clustered by close
time), ``visibility_runs`` ((domain, run) -> its clustering keys, for replace/delete).
One partition per domain (``domain_partition`` 0), as Cadence's default.

A migration's statements are idempotent (IF NOT EXISTS), so re-running a version is harmless.
"""

from __future__ import annotations

SCHEMA_VERSION = 1

_MAP_COLUMNS = ", ".join(
    f"{name} map<text, blob>"
    for name in (
        "activity_map",
        "timer_map",
        "child_execution_map",
        "request_cancel_map",
        "signal_map",
        "signal_requested_map",
        "buffered_events_map",
    )
)

_VISIBILITY_COLUMNS = """
        workflow_id text,
        workflow_type text,
        execution_time bigint,
        task_list text,
        close_status int,
        is_open boolean,
        history_length bigint,
        is_cron boolean,
        memo blob,
        search_attributes text,
        update_time bigint"""

_V1 = [
    """CREATE TABLE IF NOT EXISTS schema_version (
        id int PRIMARY KEY,
        version int,
        updated_at bigint)""",
    f"""CREATE TABLE IF NOT EXISTS executions (
        shard_id int,
        type int,
        domain_id text,
        workflow_id text,
        run_id text,
        visibility_ts bigint,
        task_id bigint,
        range_id bigint,
        owner text,
        transfer_ack_level bigint,
        timer_ack_level bigint,
        shard_data blob,
        shard_updated_at bigint,
        next_event_id bigint,
        state int,
        close_status int,
        create_request_id text,
        start_time bigint,
        info blob,
        {_MAP_COLUMNS},
        current_run_id text,
        current_state int,
        current_close_status int,
        current_create_request_id text,
        current_start_time bigint,
        task_type int,
        task_domain_id text,
        task_workflow_id text,
        task_run_id text,
        task_data blob,
        task_visibility_time bigint,
        history_txn_id bigint,
        history_last_event_id bigint,
        PRIMARY KEY (shard_id, type, domain_id, workflow_id, run_id, visibility_ts, task_id))""",
    """CREATE TABLE IF NOT EXISTS history_node (
        domain_id text,
        workflow_id text,
        run_id text,
        node_id bigint,
        txn_id bigint,
        last_event_id bigint,
        data blob,
        PRIMARY KEY ((domain_id, workflow_id, run_id), node_id, txn_id))""",
    """CREATE TABLE IF NOT EXISTS tasks (
        domain_id text,
        task_list_name text,
        task_list_type int,
        row_type int,
        task_id bigint,
        range_id bigint,
        kind int,
        ack_level bigint,
        list_data blob,
        updated_at bigint,
        data blob,
        created_time bigint,
        expiry_time bigint,
        PRIMARY KEY ((domain_id, task_list_name, task_list_type), row_type, task_id))""",
    """CREATE TABLE IF NOT EXISTS task_lists_by_domain (
        domain_id text,
        task_list_name text,
        task_list_type int,
        PRIMARY KEY (domain_id, task_list_name, task_list_type))""",
    """CREATE TABLE IF NOT EXISTS domains (
        domain_id text PRIMARY KEY,
        name text)""",
    """CREATE TABLE IF NOT EXISTS domains_by_name (
        domains_partition int,
        name text,
        domain_id text,
        status int,
        data blob,
        notification_version bigint,
        metadata_version bigint STATIC,
        PRIMARY KEY (domains_partition, name))""",
    f"""CREATE TABLE IF NOT EXISTS visibility_by_start (
        domain_id text,
        domain_partition int,
        start_time bigint,
        run_id text,
        close_time bigint,{_VISIBILITY_COLUMNS},
        PRIMARY KEY ((domain_id, domain_partition), start_time, run_id))
        WITH CLUSTERING ORDER BY (start_time DESC, run_id DESC)""",
    f"""CREATE TABLE IF NOT EXISTS visibility_by_close (
        domain_id text,
        domain_partition int,
        close_time bigint,
        run_id text,
        start_time bigint,{_VISIBILITY_COLUMNS},
        PRIMARY KEY ((domain_id, domain_partition), close_time, run_id))
        WITH CLUSTERING ORDER BY (close_time DESC, run_id DESC)""",
    """CREATE TABLE IF NOT EXISTS visibility_runs (
        domain_id text,
        run_id text,
        start_time bigint,
        close_time bigint,
        PRIMARY KEY ((domain_id, run_id)))""",
    # The domain metadata version starts at 0 (a static-only row of the one partition).
    "INSERT INTO domains_by_name (domains_partition, metadata_version) VALUES (0, 0) IF NOT EXISTS",
]

MIGRATIONS: dict[int, list[str]] = {1: _V1}


def create_keyspace(keyspace: str, replication: str) -> str:
    return (
        f"CREATE KEYSPACE IF NOT EXISTS {keyspace} WITH replication = {replication} AND durable_writes = true"
    )
