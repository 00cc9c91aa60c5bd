"""The query compiler executed on real databases: SQLite, PostgreSQL and MariaDB/MySQL.

Each test database gets a fresh executions_visibility table (the columns the adapters
create) with hand-inserted rows; every query of the table below is parsed, compiled for
the dialect and run, and must return exactly the expected runs in the expected order,
the same count, and the same rows again when read in keyset pages of two.
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from cadence_fast.persistence.records import CloseStatus, VisibilityRecord
from cadence_fast.persistence.sqlvisibility import compile_query
from cadence_fast.visibility.query import parse_query
from cadence_fast.visibility.search_attributes import SearchAttributeRegistry

REGISTRY = SearchAttributeRegistry({"Env": "keyword"})
BASE = 1_700_000_000_000_000_000  # 2023-11-14T22:13:20Z
S = 1_000_000_000
DOMAIN = "d-1"

COLUMNS = (
    "domain_id, run_id, workflow_id, workflow_type, start_time, execution_time, close_time, close_status, "
    "history_length, task_list, is_cron, memo, search_attributes, update_time"
)


def _row(
    run: str,
    wf: str,
    wf_type: str,
    start: int,
    close: int | None,
    status: int | None,
    hist: int,
    tl: str,
    cron: bool,
    sa: dict[str, object],
    domain: str = DOMAIN,
) -> VisibilityRecord:
    return VisibilityRecord(
        domain_id=domain,
        workflow_id=wf,
        run_id=run,
        workflow_type=wf_type,
        start_time=BASE + start * S,
        execution_time=BASE + start * S,
        task_list=tl,
        close_time=None if close is None else BASE + close * S,
        close_status=status,
        history_length=hist,
        is_cron=cron,
        memo=b"",
        search_attributes=sa,
        update_time=BASE,
    )


C = CloseStatus
ROWS = [
    _row("r1", "wf-a", "TypeA", 1, 5, C.COMPLETED, 10, "tl1", False,
         {"CustomKeywordField": "blue", "CustomIntField": 5, "CustomDoubleField": 1.5, "CustomBoolField": True,
          "CustomDatetimeField": BASE + 100 * S, "CustomStringField": "hello world", "Env": "prod"}),
    _row("r2", "wf-b", "TypeA", 2, None, None, 3, "tl1", True,
         {"CustomKeywordField": ["red", "green"], "CustomIntField": 7, "Env": "dev"}),
    _row("r3", "wf-c", "TypeB", 3, 4, C.FAILED, 20, "tl2", False,
         {"CustomKeywordField": "Blue", "CustomIntField": -1, "CustomBoolField": False, "CustomDoubleField": 2.25}),
    _row("r4", "wf-a", "TypeB", 4, None, None, 1, "tl2", False, {}),
    _row("r5", "wf-d", "TypeC", 5, 9, C.TIMED_OUT, 7, "tl1", True,
         {"CustomIntField": 5, "CustomDatetimeField": BASE + 200 * S}),
    _row("r6", "wf-e", "TypeA", 5, None, None, 2, "tl1", False, {"CadenceChangeVersion": ["v-1", "v-2"]}),
    _row("x1", "wf-a", "TypeA", 6, None, None, 1, "tl1", False, {"CustomIntField": 5}, domain="other"),
]  # fmt: skip

#: query text -> run ids in the order the query must return them.
CASES: list[tuple[str, list[str]]] = [
    ("", ["r6", "r5", "r4", "r3", "r2", "r1"]),
    ("WorkflowID = 'wf-a'", ["r4", "r1"]),
    ('WorkflowID = "wf-a"', ["r4", "r1"]),
    ("WorkflowID != 'wf-a'", ["r6", "r5", "r3", "r2"]),
    ("WorkflowID <> 'wf-a'", ["r6", "r5", "r3", "r2"]),
    ("RunID = 'r3'", ["r3"]),
    ("WorkflowType = 'TypeA'", ["r6", "r2", "r1"]),
    ("WorkflowType = 'typea'", []),
    ("WorkflowType IN ('TypeB', 'TypeC')", ["r5", "r4", "r3"]),
    ("WorkflowType NOT IN ('TypeA')", ["r5", "r4", "r3"]),
    ("TaskList = 'tl2'", ["r4", "r3"]),
    ("IsCron = true", ["r5", "r2"]),
    ("IsCron = false", ["r6", "r4", "r3", "r1"]),
    ("HistoryLength >= 10", ["r3", "r1"]),
    ("HistoryLength < 3", ["r6", "r4"]),
    ("HistoryLength <= 3", ["r6", "r4", "r2"]),
    ("HistoryLength > 7", ["r3", "r1"]),
    ("StartTime > '2023-11-14T22:13:22Z'", ["r6", "r5", "r4", "r3"]),
    (f"StartTime >= {BASE + 4 * S}", ["r6", "r5", "r4"]),
    ("StartTime BETWEEN '2023-11-14T22:13:22Z' AND '2023-11-14T23:13:24+01:00'", ["r4", "r3", "r2"]),
    ("StartTime NOT BETWEEN '2023-11-14T22:13:22Z' AND '2023-11-14T22:13:24Z'", ["r6", "r5", "r1"]),
    ("ExecutionTime < '2023-11-14T22:13:21.5Z'", ["r1"]),
    ("CloseTime = missing", ["r6", "r4", "r2"]),
    ("CloseTime != missing", ["r5", "r3", "r1"]),
    ("CloseTime IS NULL", ["r6", "r4", "r2"]),
    ("CloseTime < '2023-11-14T22:13:26Z'", ["r3", "r1"]),
    ("CloseStatus = 'COMPLETED'", ["r1"]),
    ("CloseStatus = 'TimedOut'", ["r5"]),
    ("CloseStatus = 1", ["r3"]),  # Cadence's integers: 1 = FAILED
    ("CloseStatus != 'FAILED'", ["r6", "r5", "r4", "r2", "r1"]),
    ("CloseStatus IN ('completed', 'failed')", ["r3", "r1"]),
    ("CloseStatus NOT IN ('completed')", ["r6", "r5", "r4", "r3", "r2"]),
    ("CustomKeywordField = 'blue'", ["r1"]),
    ("CustomKeywordField = 'green'", ["r2"]),
    ("CustomKeywordField IN ('red', 'Blue')", ["r3", "r2"]),
    ("CustomKeywordField != 'blue'", ["r6", "r5", "r4", "r3", "r2"]),
    ("CustomKeywordField NOT IN ('blue', 'red')", ["r6", "r5", "r4", "r3"]),
    ("CustomKeywordField = missing", ["r6", "r5", "r4"]),
    ("CadenceChangeVersion = 'v-2'", ["r6"]),
    ("Env = 'prod'", ["r1"]),
    ("`Env` = 'dev'", ["r2"]),
    ("CustomStringField = 'hello world'", ["r1"]),
    ("CustomIntField = 5", ["r5", "r1"]),
    ("CustomIntField > 0", ["r5", "r2", "r1"]),
    ("CustomIntField BETWEEN -1 AND 5", ["r5", "r3", "r1"]),
    ("CustomIntField != 5", ["r6", "r4", "r3", "r2"]),
    ("CustomIntField IN (7, -1)", ["r3", "r2"]),
    ("CustomIntField = missing", ["r6", "r4"]),
    ("CustomIntField != missing", ["r5", "r3", "r2", "r1"]),
    ("CustomDoubleField < 2", ["r1"]),
    ("CustomDoubleField >= 1.5", ["r3", "r1"]),
    ("CustomBoolField = false", ["r3"]),
    ("CustomBoolField = true", ["r1"]),
    ("CustomDatetimeField > '2023-11-14T22:15:00Z'", ["r5"]),
    (f"CustomDatetimeField <= {BASE + 100 * S}", ["r1"]),
    ("(WorkflowType = 'TypeA' OR WorkflowType = 'TypeC') AND CloseTime != missing", ["r5", "r1"]),
    ("WorkflowType = 'TypeA' AND IsCron = false OR CustomIntField = -1", ["r6", "r3", "r1"]),
    ("WorkflowType = 'TypeA' AND (IsCron = false OR CustomIntField = -1)", ["r6", "r1"]),
    ("((WorkflowID = 'wf-a'))", ["r4", "r1"]),
    ("order by StartTime asc", ["r1", "r2", "r3", "r4", "r5", "r6"]),
    ("ORDER BY CloseTime ASC", ["r3", "r1", "r5", "r2", "r4", "r6"]),
    ("ORDER BY CloseTime DESC", ["r5", "r1", "r3", "r6", "r4", "r2"]),
    ("CloseTime != missing ORDER BY CloseTime DESC", ["r5", "r1", "r3"]),
    ("ORDER BY CustomIntField", ["r3", "r1", "r5", "r2", "r4", "r6"]),
    ("ORDER BY CustomIntField DESC", ["r2", "r5", "r1", "r3", "r6", "r4"]),
    ("ORDER BY WorkflowType, StartTime DESC", ["r6", "r2", "r1", "r4", "r3", "r5"]),
    ("ORDER BY CustomBoolField ASC", ["r3", "r1", "r2", "r4", "r5", "r6"]),
    ("ORDER BY CustomKeywordField ASC", ["r3", "r1", "r2", "r4", "r5", "r6"]),
    ("ORDER BY CustomDoubleField DESC", ["r3", "r1", "r6", "r5", "r4", "r2"]),
    ("HistoryLength > 1 ORDER BY HistoryLength DESC", ["r3", "r1", "r5", "r2", "r6"]),
]


@dataclass
class Db:
    dialect: str
    query: Callable[[str, list[Any]], list[tuple[Any, ...]]]


def _params(r: VisibilityRecord) -> list[Any]:
    return [
        r.domain_id, r.run_id, r.workflow_id, r.workflow_type, r.start_time, r.execution_time, r.close_time,
        r.close_status, r.history_length, r.task_list, int(r.is_cron), r.memo, json.dumps(r.search_attributes),
        r.update_time,
    ]  # fmt: skip


def _sqlite() -> Iterator[Db]:
    conn = sqlite3.connect(":memory:")
    conn.execute(
        "CREATE TABLE executions_visibility (domain_id TEXT NOT NULL, run_id TEXT NOT NULL, "
        "workflow_id TEXT NOT NULL, workflow_type TEXT NOT NULL, start_time INTEGER NOT NULL, "
        "execution_time INTEGER NOT NULL, close_time INTEGER, close_status INTEGER, "
        "history_length INTEGER NOT NULL, task_list TEXT NOT NULL, is_cron INTEGER NOT NULL, memo BLOB NOT NULL, "
        "search_attributes TEXT NOT NULL, update_time INTEGER NOT NULL, PRIMARY KEY (domain_id, run_id))"
    )
    conn.executemany(
        f"INSERT INTO executions_visibility ({COLUMNS}) VALUES ({', '.join('?' * 14)})", map(_params, ROWS)
    )
    yield Db("sqlite", lambda sql, p: conn.execute(sql, p).fetchall())
    conn.close()


def _postgres() -> Iterator[Db]:
    psycopg = pytest.importorskip("psycopg")
    try:
        conn = psycopg.connect("host=127.0.0.1 port=5432 user=postgres dbname=postgres", autocommit=True)
    except psycopg.OperationalError as e:
        pytest.fail(f"PostgreSQL on 127.0.0.1:5432 is needed for this test (scripts/ensure-databases): {e}")
    schema = f"vt_{uuid.uuid4().hex[:12]}"
    conn.execute(f"CREATE SCHEMA {schema}")
    conn.execute(f"SET search_path TO {schema}")
    conn.execute(
        "CREATE TABLE executions_visibility (domain_id TEXT NOT NULL, run_id TEXT NOT NULL, "
        "workflow_id TEXT NOT NULL, workflow_type TEXT NOT NULL, start_time BIGINT NOT NULL, "
        "execution_time BIGINT NOT NULL, close_time BIGINT, close_status INTEGER, history_length BIGINT NOT NULL, "
        "task_list TEXT NOT NULL, is_cron SMALLINT NOT NULL, memo BYTEA NOT NULL, search_attributes TEXT NOT NULL, "
        "update_time BIGINT NOT NULL, PRIMARY KEY (domain_id, run_id))"
    )
    with conn.cursor() as cur:
        cur.executemany(
            f"INSERT INTO executions_visibility ({COLUMNS}) VALUES ({', '.join(['%s'] * 14)})",
            [_params(r) for r in ROWS],
        )
    yield Db("postgres", lambda sql, p: conn.execute(sql, p).fetchall())
    conn.execute(f"DROP SCHEMA {schema} CASCADE")
    conn.close()


def _mysql() -> Iterator[Db]:
    pymysql = pytest.importorskip("pymysql")
    try:
        conn = pymysql.connect(host="127.0.0.1", port=3306, user="root", autocommit=True, charset="utf8mb4")
    except pymysql.err.OperationalError as e:
        pytest.fail(
            f"MariaDB/MySQL on 127.0.0.1:3306 is needed for this test (scripts/ensure-databases): {e}"
        )
    db = f"vt_{uuid.uuid4().hex[:12]}"
    with conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE {db}")
        cur.execute(f"USE {db}")
        cur.execute(
            "CREATE TABLE executions_visibility (domain_id VARCHAR(64) NOT NULL, run_id VARCHAR(64) NOT NULL, "
            "workflow_id VARCHAR(255) NOT NULL, workflow_type VARCHAR(255) NOT NULL, start_time BIGINT NOT NULL, "
            "execution_time BIGINT NOT NULL, close_time BIGINT NULL, close_status INT NULL, "
            "history_length BIGINT NOT NULL, task_list VARCHAR(255) NOT NULL, is_cron TINYINT NOT NULL, "
            "memo LONGBLOB NOT NULL, search_attributes LONGTEXT NOT NULL, update_time BIGINT NOT NULL, "
            "PRIMARY KEY (domain_id, run_id)) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin"
        )
        cur.executemany(
            f"INSERT INTO executions_visibility ({COLUMNS}) VALUES ({', '.join(['%s'] * 14)})",
            [_params(r) for r in ROWS],
        )

    def run(sql: str, params: list[Any]) -> list[tuple[Any, ...]]:
        with conn.cursor() as cur:
            cur.execute(sql, params)
            return list(cur.fetchall())

    yield Db("mysql", run)
    with conn.cursor() as cur:
        cur.execute(f"DROP DATABASE {db}")
    conn.close()


@pytest.fixture(
    scope="module",
    params=[
        "sqlite",
        pytest.param("postgres", marks=pytest.mark.postgres),
        pytest.param("mysql", marks=pytest.mark.mysql),
    ],
)
def db(request: pytest.FixtureRequest) -> Iterator[Db]:
    yield from {"sqlite": _sqlite, "postgres": _postgres, "mysql": _mysql}[request.param]()


def _record(row: tuple[Any, ...]) -> VisibilityRecord:
    (
        domain_id,
        run_id,
        workflow_id,
        wf_type,
        start,
        exec_time,
        close,
        status,
        hist,
        tl,
        cron,
        memo,
        sa,
        upd,
    ) = row
    return VisibilityRecord(
        domain_id=domain_id, workflow_id=workflow_id, run_id=run_id, workflow_type=wf_type, start_time=start,
        execution_time=exec_time, task_list=tl, close_time=close, close_status=status, history_length=hist,
        is_cron=bool(cron), memo=bytes(memo), search_attributes=json.loads(sa), update_time=upd,
    )  # fmt: skip


def _list(
    db: Db, text: str, page_size: int, token: bytes | None
) -> tuple[list[VisibilityRecord], bytes | None]:
    """An adapter's list_workflows, as the module docstring of sqlvisibility describes it."""
    cq = compile_query(parse_query(text, REGISTRY), db.dialect)
    ph = "?" if db.dialect == "sqlite" else "%s"
    where, params = f"domain_id = {ph} AND ({cq.where})", [DOMAIN, *cq.params]
    if token:
        seek_sql, seek_params = cq.after_token(token)
        where, params = f"{where} AND ({seek_sql})", [*params, *seek_params]
    sql = f"SELECT {COLUMNS} FROM executions_visibility WHERE {where} ORDER BY {cq.order_by} LIMIT {page_size + 1}"
    records = [_record(r) for r in db.query(sql, params)]
    if len(records) > page_size:
        records = records[:page_size]
        return records, cq.page_token(records[-1])
    return records, None


@pytest.mark.parametrize(("text", "expected"), CASES, ids=[c[0] or "<empty>" for c in CASES])
def test_query(db: Db, text: str, expected: list[str]) -> None:
    records, token = _list(db, text, 100, None)
    assert [r.run_id for r in records] == expected
    assert token is None

    cq = compile_query(parse_query(text, REGISTRY), db.dialect)
    ph = "?" if db.dialect == "sqlite" else "%s"
    count = db.query(
        f"SELECT count(*) FROM executions_visibility WHERE domain_id = {ph} AND ({cq.where})",
        [DOMAIN, *cq.params],
    )
    assert count[0][0] == len(expected)

    # Keyset pages of two give the same rows in the same order, nothing twice.
    paged: list[str] = []
    token = None
    for _ in range(10):
        page, token = _list(db, text, 2, token)
        paged.extend(r.run_id for r in page)
        if token is None:
            break
    assert paged == expected


def test_values_are_bound_not_spliced(db: Db) -> None:
    """Hostile text in a value is data: it matches nothing and breaks nothing."""
    for value in ["x' OR '1'='1", 'x" OR 1=1 --', "'; DROP TABLE executions_visibility; --", "%s ? $1"]:
        quoted = "'" + value.replace("'", "''") + "'"
        for text in (f"WorkflowID = {quoted}", f"CustomKeywordField = {quoted}", f"Env IN ({quoted}, 'y')"):
            records, _ = _list(db, text, 100, None)
            assert records == [], text
    assert len(_list(db, "", 100, None)[0]) == 6


def test_malformed_page_token(db: Db) -> None:
    from cadence_fast.errors import BadRequestError

    cq = compile_query(parse_query("", REGISTRY), db.dialect)
    for token in (b"garbage", b"cfv1:!!!", cq.page_token(ROWS[0])[:-3]):
        with pytest.raises(BadRequestError, match="next_page_token"):
            cq.after_token(token)
    # A token of another query shape (a different number of sort keys) is refused too.
    other = compile_query(parse_query("ORDER BY WorkflowType, StartTime", REGISTRY), db.dialect)
    with pytest.raises(BadRequestError, match="next_page_token"):
        cq.after_token(other.page_token(ROWS[0]))
