"""Listing 100,000 closed workflows by type on SQLite: the first page must take < 100 ms.

Run:  CADENCE_FAST_PURE=1 python -m pytest benchmarks/test_visibility_list.py --benchmark-only

The rows are bulk-written with the SQLite adapter's own visibility upsert (as the
history engine's commits write them) into a store created by the adapter, so its
indexes are the ones measured. Each case lists through `store.list_workflows` with the
AST the VisibilityAPI builds (ListClosedWorkflowExecutions by type) or the query
language (ListWorkflowExecutions), including a deep page reached by a keyset token.
"""

from __future__ import annotations

import asyncio
import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cadence_fast.persistence.records import VisibilityRecord
from cadence_fast.persistence.sqlite.executions import UPSERT_VISIBILITY, visibility_params
from cadence_fast.persistence.sqlite.store import SQLiteStore
from cadence_fast.persistence.visibility_query import (
    And,
    Between,
    Compare,
    IsNull,
    OrderBy,
    VisibilityQuery,
    attr,
)
from cadence_fast.visibility.query import parse_query
from cadence_fast.visibility.search_attributes import SearchAttributeRegistry

CLOSED = 100_000
OPEN = 5_000
TYPES = 10
PAGE = 100
DOMAIN = str(uuid.UUID(int=1))
BASE = 1_700_000_000 * 1_000_000_000
LIMIT_SECONDS = 0.100


def _record(i: int, closed: bool) -> VisibilityRecord:
    start = BASE + i * 1_000_000
    return VisibilityRecord(
        domain_id=DOMAIN,
        workflow_id=f"order-{i}",
        run_id=str(uuid.UUID(int=(i * 2654435761) % 2**128)),
        workflow_type=f"Type{i % TYPES}",
        start_time=start,
        execution_time=start,
        task_list="orders",
        close_time=start + 3_000_000_000 if closed else None,
        close_status=1 + i % 6 if closed else None,
        history_length=11,
        is_cron=False,
        memo=b"",
        search_attributes={"CustomKeywordField": f"k{i % 50}"},
        update_time=start,
    )


@pytest.fixture(scope="module")
def store(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[asyncio.AbstractEventLoop, SQLiteStore]]:
    path: Path = tmp_path_factory.mktemp("visbench") / "cadence.db"
    loop = asyncio.new_event_loop()
    s = SQLiteStore(f"sqlite:///{path}")
    loop.run_until_complete(s.open(create_schema=True))
    loop.run_until_complete(s.close())
    conn = sqlite3.connect(path)
    rows = [visibility_params(_record(i, closed=i >= OPEN)) for i in range(CLOSED + OPEN)]
    conn.executemany(UPSERT_VISIBILITY, rows)
    conn.commit()
    conn.execute("ANALYZE")
    conn.close()
    s = SQLiteStore(f"sqlite:///{path}")
    loop.run_until_complete(s.open())
    yield loop, s
    loop.run_until_complete(s.close())
    loop.close()


def _closed_by_type(name: str) -> VisibilityQuery:
    """What ListClosedWorkflowExecutions(type_filter) builds: close-time range, newest first."""
    where = And((Between(attr("CloseTime"), 0, 2**63 - 1), Compare(attr("WorkflowType"), "=", name)))
    return VisibilityQuery(where, (OrderBy(attr("CloseTime"), descending=True),))


def _open_by_type(name: str) -> VisibilityQuery:
    where = And(
        (
            IsNull(attr("CloseTime")),
            Between(attr("StartTime"), 0, 2**63 - 1),
            Compare(attr("WorkflowType"), "=", name),
        )
    )
    return VisibilityQuery(where, (OrderBy(attr("StartTime"), descending=True),))


REGISTRY = SearchAttributeRegistry()
CASES: dict[str, VisibilityQuery] = {
    "ListClosed by type": _closed_by_type("Type3"),
    "ListOpen by type": _open_by_type("Type3"),
    "query: type, closed": parse_query("WorkflowType = 'Type3' AND CloseTime != missing", REGISTRY),
    "query: type, order by CloseTime": parse_query(
        "WorkflowType = 'Type3' ORDER BY CloseTime DESC", REGISTRY
    ),
    "query: status": parse_query("CloseStatus = 'FAILED'", REGISTRY),
    "query: all, default order": parse_query("", REGISTRY),
}


def _page(loop: asyncio.AbstractEventLoop, s: SQLiteStore, q: VisibilityQuery, token: bytes | None) -> Any:
    return loop.run_until_complete(s.list_workflows(DOMAIN, q, PAGE, token))


@pytest.mark.parametrize("case", list(CASES))
def test_first_page(benchmark: Any, store: tuple[asyncio.AbstractEventLoop, SQLiteStore], case: str) -> None:
    loop, s = store
    records, token = benchmark(_page, loop, s, CASES[case], None)
    assert len(records) == PAGE and token
    assert benchmark.stats.stats.median < LIMIT_SECONDS, (
        f"{case}: first page took {benchmark.stats.stats.median:.3f}s"
    )


@pytest.mark.parametrize("case", ["ListClosed by type", "query: all, default order"])
def test_deep_page(benchmark: Any, store: tuple[asyncio.AbstractEventLoop, SQLiteStore], case: str) -> None:
    """Page 50 (rows 5,000..5,100): keyset tokens make it as cheap as the first."""
    loop, s = store
    token = None
    for _ in range(50):
        _, token = _page(loop, s, CASES[case], token)
    records, _ = benchmark(_page, loop, s, CASES[case], token)
    assert len(records) == PAGE
    assert benchmark.stats.stats.median < LIMIT_SECONDS


def test_count_by_type(benchmark: Any, store: tuple[asyncio.AbstractEventLoop, SQLiteStore]) -> None:
    loop, s = store
    q = parse_query("WorkflowType = 'Type3' AND CloseTime != missing", REGISTRY)
    n = benchmark(lambda: loop.run_until_complete(s.count_workflows(DOMAIN, q)))
    assert n == CLOSED // TYPES
