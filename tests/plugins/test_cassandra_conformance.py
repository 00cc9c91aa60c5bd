"""The Cassandra plugin: the conformance kit on a real cluster, and its server-free parts.

The kit runs when CASSANDRA_CONTACT_POINTS names a cluster (``host1,host2[:port]``;
optional CASSANDRA_USERNAME / CASSANDRA_PASSWORD / CASSANDRA_DATACENTER) in a fresh
keyspace per test session, dropped at the end. Without it every kit test is reported
skipped with the reason "CASSANDRA_CONTACT_POINTS is not set".

The rest always runs (no server needed): URL parsing, the CQL of a shard write (its
LWT conditions, that every statement of a batch stays on the shard's partition, that
every column exists in the schema), op grouping, and which visibility queries the
Cassandra store serves or refuses.
"""

from __future__ import annotations

import os
import re
import subprocess
import uuid
from collections.abc import Iterator
from urllib.parse import quote

import pytest
from cadence_fast_cassandra import cql, history, schema, visibility_scan
from cadence_fast_cassandra.store import CassandraStore, schema_message
from cadence_fast_cassandra.url import parse_url
from cadence_fast_cassandra.visibility import (
    BY_CLOSE,
    BY_START,
    UnsupportedVisibilityQuery,
    plan_query,
)

from cadence_fast.errors import BadRequestError
from cadence_fast.persistence.errors import StoreError, Unavailable
from cadence_fast.persistence.records import (
    CloseStatus,
    CreateMode,
    MapKind,
    VisibilityRecord,
    WorkflowState,
)
from cadence_fast.persistence.registry import create_store
from cadence_fast.persistence.testing.factories import (
    batch,
    create_op,
    timer_task,
    transfer_task,
    update_op,
    visibility,
)
from cadence_fast.persistence.testing.suite import *  # noqa: F403
from cadence_fast.persistence.visibility_query import (
    And,
    Attr,
    AttrType,
    Between,
    Compare,
    In,
    IsNull,
    Or,
    OrderBy,
    VisibilityQuery,
    attr,
)
from cadence_fast.visibility.query import parse_query
from cadence_fast.visibility.search_attributes import SearchAttributeRegistry
from tests.conftest import cli_command, free_port

CONTACT_POINTS = os.environ.get("CASSANDRA_CONTACT_POINTS", "").strip()


# --- the conformance kit (needs a cluster) ---------------------------------------------------


def _cluster_url(keyspace: str) -> str:
    user = os.environ.get("CASSANDRA_USERNAME")
    password = os.environ.get("CASSANDRA_PASSWORD")
    auth = ""
    if user:
        auth = quote(user, safe="") + (f":{quote(password, safe='')}" if password else "") + "@"
    dc = os.environ.get("CASSANDRA_DATACENTER")
    return f"cassandra://{auth}{CONTACT_POINTS}/{keyspace}" + (f"?datacenter={dc}" if dc else "")


@pytest.fixture(scope="session")
def cassandra_keyspace_url() -> Iterator[str]:
    """A fresh keyspace for the session (the kit's tests use unique ids); dropped at the end."""
    if not CONTACT_POINTS:
        pytest.skip("CASSANDRA_CONTACT_POINTS is not set")
    url = _cluster_url(f"cadence_kit_{uuid.uuid4().hex[:12]}")
    yield url
    from cadence_fast_cassandra.driver import make_cluster

    config = parse_url(url)
    cluster = make_cluster(config)
    try:
        cluster.connect().execute(f"DROP KEYSPACE IF EXISTS {config.keyspace}")
    finally:
        cluster.shutdown()


@pytest.fixture
def store_url(cassandra_keyspace_url: str) -> str:
    return cassandra_keyspace_url


# --- URLs ----------------------------------------------------------------------------------------


def test_url_hosts_ports_auth_and_options() -> None:
    u = parse_url(
        "cassandra://svc:s%40cret@10.0.0.1,10.0.0.2:9043,[::1]:9044/cadence?replication_factor=3&datacenter=dc1"
    )
    assert u.hosts == (("10.0.0.1", 9042), ("10.0.0.2", 9043), ("::1", 9044))
    assert (u.keyspace, u.username, u.password) == ("cadence", "svc", "s@cret")
    assert (u.replication_factor, u.datacenter) == (3, "dc1")
    assert u.replication() == "{'class': 'NetworkTopologyStrategy', 'dc1': 3}"
    assert "s@cret" not in u.redacted() and "s%40cret" not in u.redacted()
    plain = parse_url("cassandra://localhost/ks")
    assert plain.hosts == (("localhost", 9042),) and plain.username is None
    assert plain.replication() == "{'class': 'SimpleStrategy', 'replication_factor': 1}"
    assert (plain.timeout, plain.connect_timeout) == (10.0, 5.0)
    assert parse_url("cassandra://h/ks?timeout=2.5").timeout == 2.5
    assert parse_url("cassandra://h/Cadence_Prod").keyspace == "cadence_prod", "CQL folds unquoted names"


@pytest.mark.parametrize(
    ("url", "names"),
    [
        ("cassandra://host1,host2", "keyspace"),
        ("cassandra:///ks", "no host"),
        ("cassandra://h/bad-name", "keyspace 'bad-name'"),
        ("cassandra://h/1ks", "keyspace '1ks' must be a letter then"),
        ("cassandra://h:99999/ks", "port"),
        ("cassandra://h:abc/ks", "port"),
        ("cassandra://h,,g/ks", "empty host"),
        ("cassandra://h/ks?replication_factor=0", "replication_factor"),
        ("cassandra://h/ks?replication=3", "unknown option 'replication'"),
        ("cassandra://h/ks?datacenter=a%20b", "datacenter"),
        ("cassandra://h/ks?timeout=-1", "timeout"),
        ("postgresql://h/ks", "scheme"),
    ],
)
def test_url_errors_name_the_problem(url: str, names: str) -> None:
    with pytest.raises(StoreError, match=re.escape(names)):
        parse_url(url)


def test_url_error_hides_the_password() -> None:
    with pytest.raises(StoreError) as info:
        parse_url("cassandra://user:topsecret@h/bad-name")
    assert "topsecret" not in str(info.value)


async def test_store_found_by_scheme_and_bad_url_fails_on_open() -> None:
    store = create_store("cassandra://h1,h2/ks")
    assert isinstance(store, CassandraStore) and not store.auto_create_schema
    bad = create_store("cassandra://h1/")
    with pytest.raises(StoreError, match="keyspace"):
        await bad.open()
    with pytest.raises(StoreError, match="keyspace"):
        await bad.schema_version()
    with pytest.raises(StoreError, match="not open"):
        await store.get_metadata_version()


async def test_unreachable_cluster_is_unavailable() -> None:
    """The driver really connects: a refused connection is Unavailable (retryable), naming the cluster."""
    port = free_port()
    store = create_store(f"cassandra://127.0.0.1:{port}/ks?connect_timeout=1")
    for call in (store.schema_version, store.setup_schema, store.open):
        with pytest.raises(
            Unavailable, match=re.escape(f"Cassandra at cassandra://127.0.0.1:{port}/ks is unavailable")
        ):
            await call()


def test_schema_cli_reports_an_unreachable_cluster() -> None:
    port = free_port()
    url = f"cassandra://user:hidden@127.0.0.1:{port}/ks?connect_timeout=1"
    proc = subprocess.run(
        [*cli_command(), "schema", "version", "--store", url], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 1, proc
    assert f"127.0.0.1:{port}/ks is unavailable" in proc.stderr and "hidden" not in proc.stderr


def test_schema_errors_name_the_command() -> None:
    shown = "cassandra://h/ks"
    missing = schema_message(None, 1, shown)
    assert missing is not None and "cadence-fast schema setup --store cassandra://h/ks" in str(missing)
    old = schema_message(1, 2, shown)
    assert old is not None and "cadence-fast schema update --store cassandra://h/ks" in str(old)
    newer = schema_message(3, 2, shown)
    assert newer is not None and "newer" in str(newer)
    assert schema_message(2, 2, shown) is None


# --- the CQL of a shard write -------------------------------------------------------------------

SHARD, RANGE, TXN = 17, 5, 987654321


def _schema_columns() -> dict[str, set[str]]:
    tables: dict[str, set[str]] = {}
    for ddl in schema.MIGRATIONS[schema.SCHEMA_VERSION]:
        m = re.match(r"CREATE TABLE IF NOT EXISTS (\w+) \((.*)\)", ddl, re.S)
        if m:
            body = m.group(2).split("PRIMARY KEY (")[0]
            tables[m.group(1)] = {line.split()[0] for line in body.split(",") if line.strip()}
    return tables


COLUMNS = _schema_columns()


def _check_statement(statement: tuple[str, tuple[object, ...]]) -> None:
    """Placeholders match params; every named column exists; the row is on the shard's partition."""
    text, params = statement
    assert text.count("?") == len(params), text
    table = re.search(r"(?:INTO|UPDATE|FROM) (\w+)", text)
    assert table is not None and table.group(1) in COLUMNS, text
    known = COLUMNS[table.group(1)]
    insert = re.match(r"INSERT INTO \w+ \(([^)]*)\)", text)
    named = insert.group(1).split(", ") if insert else re.findall(r"(\w+) (?:=|<=|>=|<|>) ", text)
    for column in named:
        assert column.strip() in known, f"{column!r} is not a column of {table.group(1)}: {text}"
    if table.group(1) == "executions":
        # The partition key is the shard: a conditional batch must stay on one partition.
        if insert:
            assert params[0] == SHARD, text
        else:
            index = text.split("WHERE", 1)[0].count("?") + text.split("WHERE", 1)[1].split("shard_id = ?")[
                0
            ].count("?")
            assert params[index] == SHARD, text


def _conditions(statements: list[tuple[str, tuple[object, ...]]]) -> list[str]:
    return [text.split(" IF ", 1)[1] for text, _ in statements if " IF " in text]


def test_create_brand_new_batch_conditions() -> None:
    op = create_op(
        "d",
        "wf",
        "run-1",
        maps={MapKind.ACTIVITY: {"5": b"a"}, MapKind.TIMER: {}},
        history=[batch(1, 2)],
        transfer=[transfer_task("d", "wf", "run-1", 40)],
        timers=[timer_task("d", "wf", "run-1", 1_000, 41)],
    )
    statements = cql.create_statements(SHARD, RANGE, op, TXN)
    for s in statements:
        _check_statement(s)
    # Fencing first: the shard row re-writes its range_id, conditioned on it.
    assert statements[0] == (cql.SHARD_CONDITION, (RANGE, *cql.shard_key(SHARD), RANGE))
    assert _conditions(statements) == ["range_id = ?", "NOT EXISTS", "NOT EXISTS"]
    current, execution = statements[1], statements[2]
    assert current[1][:7] == cql.current_key(SHARD, "d", "wf") and current[1][7] == "run-1"
    assert execution[1][:7] == cql.execution_key(SHARD, "d", "wf", "run-1")
    assert "activity_map" in execution[0] and "timer_map" not in execution[0], "empty maps are not written"
    assert execution[1][-1] == {"5": b"a"}
    kinds = [s[1][1] for s in statements[3:]]
    assert kinds == [cql.RowType.TRANSFER, cql.RowType.TIMER, cql.RowType.HISTORY_TXN]
    confirmation = statements[-1][1]
    assert confirmation[6:] == (1, TXN, 2), "node id 1 of txn TXN, last event 2"


def test_create_reuse_requires_a_closed_previous_run() -> None:
    op = create_op("d", "wf", mode=CreateMode.WORKFLOW_ID_REUSE, previous_run_id="run-0")
    statements = cql.create_statements(SHARD, RANGE, op, TXN)
    for s in statements:
        _check_statement(s)
    text, params = statements[1]
    assert text.endswith("IF current_run_id = ? AND current_state = ?")
    assert params[-2:] == ("run-0", WorkflowState.COMPLETED)


def test_update_batch_conditions_and_map_delta() -> None:
    created = create_op("d", "wf", "run-1")
    op = update_op(
        created,
        condition=7,
        events=2,
        map_upserts=[(MapKind.ACTIVITY, "5", b"started"), (MapKind.SIGNAL, "9", b"s")],
        map_deletes=[(MapKind.ACTIVITY, "5"), (MapKind.ACTIVITY, "6"), (MapKind.TIMER, "t")],
        transfer_tasks=[transfer_task("d", "wf", "run-1", 70)],
    )
    statements = cql.update_statements(SHARD, RANGE, op, TXN)
    for s in statements:
        _check_statement(s)
    assert statements[0][0] == cql.SHARD_CONDITION
    assert _conditions(statements) == ["range_id = ?", "next_event_id = ?", "current_run_id = ?"]
    text, params = statements[1]
    assert params[-1] == 7, "conditioned on next_event_id as loaded"
    assert "activity_map = activity_map + ?" in text and "signal_map = signal_map + ?" in text
    assert {"5": b"started"} in params and {"9": b"s"} in params
    delete_text, delete_params = statements[2]
    assert "activity_map = activity_map - ?" in delete_text and "timer_map = timer_map - ?" in delete_text
    # "5" is deleted and upserted by the op: the upsert wins (one timestamp per batch, tombstones win ties).
    assert delete_params[:2] == ({"6"}, {"t"})
    current_text, current_params = statements[3]
    assert current_params[-1] == "run-1" and current_params[:2] == (WorkflowState.RUNNING, CloseStatus.NONE)
    assert [s[1][1] for s in statements[4:]] == [cql.RowType.TRANSFER, cql.RowType.HISTORY_TXN]


def test_update_without_current_row() -> None:
    op = update_op(create_op("d", "wf", "run-1"), update_current=False)
    statements = cql.update_statements(SHARD, RANGE, op, TXN)
    assert _conditions(statements) == ["range_id = ?", "next_event_id = ?"]
    assert not any("current_" in text for text, _ in statements)


def test_continue_as_new_swings_the_current_row_in_the_same_batch() -> None:
    first = create_op("d", "wf", "run-1")
    new_run = create_op(
        "d", "wf", "run-2", mode=CreateMode.CONTINUE_AS_NEW, previous_run_id="run-1", history=[batch(1, 2)]
    )
    op = update_op(first, close=CloseStatus.CONTINUED_AS_NEW, new_run=new_run)
    statements = cql.update_statements(SHARD, RANGE, op, TXN)
    for s in statements:
        _check_statement(s)
    assert _conditions(statements) == [
        "range_id = ?",
        "next_event_id = ?",
        "current_run_id = ?",
        "NOT EXISTS",
    ]
    swing = next(s for s in statements if s[0].endswith("IF current_run_id = ?"))
    assert swing[1][0] == "run-2" and swing[1][-1] == "run-1"
    confirmations = [s[1] for s in statements if s[1][1] == cql.RowType.HISTORY_TXN]
    assert [(c[4], c[6], c[7]) for c in confirmations] == [("run-2", 1, TXN), ("run-1", 3, TXN)]
    bad = update_op(
        first, new_run=create_op("d", "wf", mode=CreateMode.CONTINUE_AS_NEW, previous_run_id="other")
    )
    with pytest.raises(cql.ImpossibleCondition):
        cql.update_statements(SHARD, RANGE, bad, TXN)
    with pytest.raises(cql.ImpossibleCondition):
        cql.update_statements(SHARD, RANGE, update_op(first, new_run=create_op("d", "wf")), TXN)


def test_history_appended_before_and_confirmed_in_the_batch() -> None:
    first = create_op("d", "wf", "run-1")
    new_run = create_op(
        "d", "wf", "run-2", mode=CreateMode.CONTINUE_AS_NEW, previous_run_id="run-1", history=[batch(1, 1)]
    )
    op = update_op(first, condition=3, events=3, new_run=new_run)
    appends = cql.history_appends(op, TXN)
    assert [p[:6] for _, p in appends] == [("d", "wf", "run-1", 3, TXN, 5), ("d", "wf", "run-2", 1, TXN, 1)]
    for text, params in appends:
        assert text.startswith("INSERT INTO history_node") and " IF " not in text
        _check_statement((text, params))
    cleanup = cql.history_cleanup(op, TXN)
    assert [p for _, p in cleanup] == [("d", "wf", "run-1", 3, TXN), ("d", "wf", "run-2", 1, TXN)]
    for s in cleanup:
        assert s[0].count("?") == len(s[1])


def test_unknown_map_kind_is_refused() -> None:
    op = update_op(create_op("d", "wf"), map_upserts=[(99, "k", b"v")])
    with pytest.raises(ValueError, match="map kind"):
        cql.update_statements(SHARD, RANGE, op, TXN)


def test_workflows_an_op_writes() -> None:
    """commit skips later ops of a workflow whose earlier op has an unknown outcome: by these keys."""
    a = create_op("d", "a")
    assert cql.workflows_of(a) == {("d", "a")}
    b_to_c = update_op(
        create_op("d", "b"),
        update_current=False,
        new_run=create_op("d", "c", mode=CreateMode.CONTINUE_AS_NEW),
    )
    assert cql.workflows_of(b_to_c) == {("d", "b"), ("d", "c")}


def _confirmation(node: int, txn: int, last: int) -> dict[str, object]:
    return {"task_id": node, "history_txn_id": txn, "history_last_event_id": last}


def _node(node: int, txn: int, data: bytes) -> dict[str, object]:
    return {"node_id": node, "txn_id": txn, "data": data}


def test_history_shows_only_confirmed_transactions() -> None:
    """Racing writers left orphans at node 3 (on both sides of the winner's txn id) and past the end."""
    confirmations = [_confirmation(1, 50, 2), _confirmation(3, 20, 4), _confirmation(5, 90, 5)]
    nodes = [
        _node(1, 50, b"start"),
        _node(3, 10, b"orphan: smaller txn id"),
        _node(3, 20, b"winner"),
        _node(3, 30, b"orphan: larger txn id"),
        _node(5, 90, b"next"),
        _node(7, 99, b"orphan: a failed later write"),
    ]
    page, after = history.pick_page(confirmations, 1, 0)
    assert after is None
    batches = history.assemble(page, nodes, "run")
    assert [(b.first_event_id, b.last_event_id, b.data) for b in batches] == [
        (1, 2, b"start"),
        (3, 4, b"winner"),
        (5, 5, b"next"),
    ]


def test_history_paging_and_the_seek_batch() -> None:
    rows = [_confirmation(1, 1, 2), _confirmation(3, 1, 4), _confirmation(5, 1, 8)]
    page, after = history.pick_page(rows, 1, 2)
    assert [c.node_id for c in page] == [1, 3] and after == 3
    page, after = history.pick_page(rows[2:], 1, 2)
    assert [c.node_id for c in page] == [5] and after is None
    # The seek lands on the batch holding min_event_id; one that ends before it is dropped,
    # and the page still continues after the last row it scanned.
    page, after = history.pick_page([_confirmation(1, 1, 2), _confirmation(3, 1, 4)], 3, 1)
    assert page == [] and after == 1
    page, _ = history.pick_page([_confirmation(3, 1, 4)], 4, 0)
    assert [(c.node_id, c.last_event_id) for c in page] == [(3, 4)]


def test_history_missing_confirmed_node_is_an_error() -> None:
    page, _ = history.pick_page([_confirmation(1, 7, 2)], 1, 0)
    with pytest.raises(StoreError, match="node 1 of committed transaction 7 is missing"):
        history.assemble(page, [_node(1, 8, b"another txn")], "run")


# --- visibility: what Cassandra serves -----------------------------------------------------------


def test_list_open_shape_is_served() -> None:
    query = VisibilityQuery(
        And(
            (
                IsNull(attr("CloseTime")),
                Between(attr("StartTime"), 10, 20),
                Compare(attr("WorkflowID"), "=", "wf-1"),
            )
        ),
        (OrderBy(attr("StartTime"), descending=True),),
    )
    plan = plan_query(query)
    assert (plan.table, plan.is_open, plan.equals) == (BY_START, True, {"workflow_id": "wf-1"})
    where, params = plan.where(None)
    assert where == " AND (start_time) >= (?) AND (start_time) <= (?) AND is_open = ? AND workflow_id = ?"
    assert params == [10, 20, True, "wf-1"]
    assert plan.needs_filtering and plan.order_by() == "start_time DESC, run_id DESC"
    # The next page: the seek bound replaces the query's bound on its side (Cassandra allows one per side).
    token = plan.page_token(visibility("d", "wf-1", "run-9", start_time=15))
    where, params = plan.where(plan.decode_token(token))
    assert where.startswith(" AND (start_time, run_id) < (?, ?) AND (start_time) >= (?)")
    assert params[:3] == [15, "run-9", 10]


def test_list_closed_shape_is_served() -> None:
    query = VisibilityQuery(
        And((Between(attr("CloseTime"), 1, 2), Compare(attr("CloseStatus"), "=", CloseStatus.FAILED))),
        (OrderBy(attr("CloseTime"), descending=True),),
    )
    plan = plan_query(query)
    assert (plan.table, plan.is_open, plan.equals) == (BY_CLOSE, False, {"close_status": 2})
    where, _ = plan.where(None)
    assert "is_open" not in where, "the close-time table holds closed runs only"


def test_default_order_and_ascending() -> None:
    plan = plan_query(VisibilityQuery())
    assert (plan.table, plan.descending, plan.is_open, plan.needs_filtering) == (BY_START, True, None, False)
    assert plan.where(None) == ("", [])
    up = plan_query(VisibilityQuery(order_by=(OrderBy(attr("StartTime"), descending=False),)))
    assert up.order_by() == "start_time ASC, run_id ASC"
    assert up.where((5, "r"))[0] == " AND (start_time, run_id) > (?, ?)"
    closed = plan_query(VisibilityQuery(IsNull(attr("CloseTime"), negated=True)))
    assert (closed.table, closed.is_open) == (BY_START, False)
    typed = plan_query(VisibilityQuery(Compare(attr("WorkflowType"), "=", "T")))
    assert typed.equals == {"workflow_type": "T"} and typed.is_open is None


def test_queries_from_the_query_language() -> None:
    registry = SearchAttributeRegistry()
    served = [
        "",
        "WorkflowType = 'T'",
        "WorkflowID = 'w' AND CloseTime = missing",
        "CloseStatus = 'FAILED' ORDER BY CloseTime DESC",
        "StartTime > '2024-01-01T00:00:00Z' ORDER BY StartTime ASC",
    ]
    for text in served:
        plan_query(parse_query(text, registry))
    refused = [
        "HistoryLength > 3",
        "WorkflowType = 'a' OR WorkflowType = 'b'",
        "WorkflowType != 'a'",
        "ORDER BY CloseTime DESC",
        "CloseTime > '2024-01-01T00:00:00Z'",
        "CustomKeywordField = 'x'",
    ]
    for text in refused:
        try:
            query = parse_query(text, SearchAttributeRegistry({"CustomKeywordField": "keyword"}))
        except BadRequestError:
            continue  # refused by the parser already
        with pytest.raises(UnsupportedVisibilityQuery):
            plan_query(query)


@pytest.mark.parametrize(
    ("query", "names"),
    [
        (VisibilityQuery(Compare(attr("HistoryLength"), ">", 3)), "HistoryLength"),
        (
            VisibilityQuery(Compare(Attr("CustomKeywordField", AttrType.KEYWORD, custom=True), "=", "x")),
            "custom",
        ),
        (
            VisibilityQuery(
                Or((Compare(attr("WorkflowID"), "=", "a"), Compare(attr("WorkflowID"), "=", "b")))
            ),
            "Or",
        ),
        (VisibilityQuery(In(attr("WorkflowType"), ("a", "b"))), "In"),
        (VisibilityQuery(Compare(attr("WorkflowType"), "!=", "a")), "WorkflowType !="),
        (
            VisibilityQuery(order_by=(OrderBy(attr("CloseTime")),)),
            "CloseTime without restricting to closed runs",
        ),
        (VisibilityQuery(IsNull(attr("CloseTime")), (OrderBy(attr("CloseTime")),)), "open runs by CloseTime"),
        (VisibilityQuery(Between(attr("CloseTime"), 1, 2)), "CloseTime range while ordering by StartTime"),
        (VisibilityQuery(order_by=(OrderBy(attr("WorkflowType")),)), "ORDER BY WorkflowType"),
        (
            VisibilityQuery(And((Compare(attr("StartTime"), ">", 1), Compare(attr("StartTime"), ">=", 2)))),
            "more than one lower bound",
        ),
    ],
)
def test_unsupported_queries_are_refused_clearly(query: VisibilityQuery, names: str) -> None:
    with pytest.raises(UnsupportedVisibilityQuery, match=re.escape(names)) as info:
        plan_query(query)
    # INVALID_ARGUMENT to the caller, and still a storage error for the store contract.
    assert isinstance(info.value, BadRequestError) and isinstance(info.value, StoreError)
    assert "Cassandra visibility store serves only" in str(info.value)


def test_page_token_of_another_query_is_refused() -> None:
    by_close = plan_query(
        VisibilityQuery(IsNull(attr("CloseTime"), negated=True), (OrderBy(attr("CloseTime")),))
    )
    token = by_close.page_token(visibility("d", "w", "r", close_time=5, close_status=1))
    with pytest.raises(BadRequestError):
        plan_query(VisibilityQuery()).decode_token(token)
    with pytest.raises(BadRequestError):
        by_close.decode_token(b"garbage")
    assert by_close.decode_token(token) == (5, "r")


# --- visibility beyond the indexed shapes: the scan evaluator, with SQLite as the oracle ---------

ORACLE_QUERIES = [
    "",
    "CustomKeywordField = 'even'",
    "CustomKeywordField != 'even'",
    "CustomKeywordField IN ('even', 'odd') ORDER BY CustomIntField ASC",
    "CustomKeywordField NOT IN ('even')",
    "CustomIntField >= 30 ORDER BY CustomIntField DESC",
    "CustomIntField BETWEEN 10 AND 40 OR WorkflowType = 'B'",
    "CustomIntField < 25 ORDER BY CustomIntField DESC",
    "CustomDoubleField > 1.5 ORDER BY CustomDoubleField ASC",
    "CustomBoolField = true",
    "CustomKeywordField = missing",
    "CustomKeywordField != missing ORDER BY CustomKeywordField ASC",
    "CadenceChangeVersion = 'v2'",
    "CadenceChangeVersion != 'v2' ORDER BY StartTime ASC",
    "HistoryLength > 3 ORDER BY HistoryLength DESC",
    "CloseTime = missing AND CustomIntField != 20",
    "ORDER BY CustomKeywordField DESC",
    "CustomStringField = 's-3' OR CustomBoolField = false",
    "WorkflowID IN ('wf-1', 'wf-4') ORDER BY WorkflowID ASC",
]


def _oracle_records(domain: str) -> list[VisibilityRecord]:
    base = 1_700_000_000_000_000_000
    records = []
    for i in range(9):
        attrs: dict[str, object] = {"CustomIntField": i * 10, "CustomDoubleField": i / 2}
        if i % 2 == 0:
            attrs["CustomKeywordField"] = "even"
        elif i % 3 == 0:
            attrs["CustomKeywordField"] = "odd"
        if i % 4 == 1:
            attrs["CadenceChangeVersion"] = ["v1", "v2"] if i == 1 else ["v3"]
        if i % 3 == 2:
            attrs["CustomBoolField"] = i != 5
            attrs["CustomStringField"] = f"s-{9 - i}"
        closed = {"close_time": base + 100 + i, "close_status": 1} if i % 3 == 0 else {}
        records.append(
            visibility(
                domain,
                f"wf-{i}",
                f"run-{i % 4}-{i}",
                start_time=base + (i % 5),  # ties on start time: run id decides
                workflow_type="B" if i % 4 == 0 else "A",
                history_length=i,
                search_attributes=attrs,
                **closed,
            )
        )
    return records


@pytest.mark.parametrize("text", ORACLE_QUERIES)
async def test_scan_evaluator_agrees_with_the_sqlite_store(text: str) -> None:
    """Same rows, same query: the same runs in the same order, page by page."""
    query = parse_query(text, SearchAttributeRegistry())
    oracle = create_store("sqlite://:memory:")
    await oracle.open(create_schema=True)
    try:
        domain = "oracle-domain"
        records = _oracle_records(domain)
        for r in records:
            await oracle.upsert_visibility(r)
        expected, _ = await oracle.list_workflows(domain, query, 0, None)
        got, token = visibility_scan.run_query(query, records, 0, None)
        assert token is None
        assert [r.run_id for r in got] == [r.run_id for r in expected], text
        assert sum(visibility_scan.matches(query.where, r) for r in records) == await oracle.count_workflows(
            domain, query
        )
        paged: list[str] = []
        token = None
        while True:
            page, token = visibility_scan.run_query(query, records, 2, token)
            assert len(page) <= 2
            paged.extend(r.run_id for r in page)
            if token is None:
                break
        assert paged == [r.run_id for r in expected], f"paging {text}"
    finally:
        await oracle.close()


def test_scan_value_of_another_type_reads_as_missing() -> None:
    """As the PostgreSQL compiler: a value stored under another type matches nothing but != and sorts last."""
    registry = SearchAttributeRegistry()
    odd = visibility("d", "odd", "r1", search_attributes={"CustomIntField": "not a number"})
    fine = visibility("d", "fine", "r2", search_attributes={"CustomIntField": 40})
    big = parse_query("CustomIntField >= 30", registry)
    assert [visibility_scan.matches(big.where, r) for r in (odd, fine)] == [False, True]
    other = parse_query("CustomIntField != 30", registry)
    assert [visibility_scan.matches(other.where, r) for r in (odd, fine)] == [True, True]
    ordered, _ = visibility_scan.run_query(
        parse_query("ORDER BY CustomIntField ASC", registry), [odd, fine], 0, None
    )
    assert [r.workflow_id for r in ordered] == ["fine", "odd"]


def test_scan_token_of_another_query_is_refused() -> None:
    with pytest.raises(BadRequestError):
        visibility_scan.run_query(VisibilityQuery(), [], 2, b"cfs1:bm90IGpzb24=")
    with pytest.raises(BadRequestError):
        visibility_scan.run_query(VisibilityQuery(), [], 2, b"garbage")


def test_scan_limit_option() -> None:
    assert parse_url("cassandra://h/ks").visibility_scan_limit == 10_000
    assert parse_url("cassandra://h/ks?visibility_scan_limit=0").visibility_scan_limit == 0
    with pytest.raises(StoreError, match="visibility_scan_limit"):
        parse_url("cassandra://h/ks?visibility_scan_limit=-5")
