"""Visibility listing SQL for SQLite: the query AST compiled by the shared compiler.

`cadence_fast.persistence.sqlvisibility.compile_query` (shared with the PostgreSQL
and MySQL plugins) turns a VisibilityQuery into a WHERE expression, its parameters
and an ORDER BY list over `executions_visibility`. Until that module exists only
unfiltered queries in the default order are served.
"""

from __future__ import annotations

from typing import Any

from cadence_fast.persistence.errors import StoreError
from cadence_fast.persistence.visibility_query import VisibilityQuery

DEFAULT_ORDER = "start_time DESC, run_id"


def _compile(query: VisibilityQuery) -> tuple[str, list[Any], str]:
    try:
        from cadence_fast.persistence.sqlvisibility import compile_query
    except ImportError:
        if query.where is not None or query.order_by:
            raise StoreError(
                "visibility queries with filters need cadence_fast.persistence.sqlvisibility"
            ) from None
        return "1=1", [], DEFAULT_ORDER
    compiled = compile_query(query, dialect="sqlite")
    return compiled.where, list(compiled.params), compiled.order_by


def list_workflows_sql(
    columns: str, domain_id: str, query: VisibilityQuery, limit: int, offset: int
) -> tuple[str, list[Any]]:
    where, params, order_by = _compile(query)
    sql = (
        f"SELECT {columns} FROM executions_visibility WHERE domain_id = ? AND ({where}) "
        f"ORDER BY {order_by} LIMIT ? OFFSET ?"
    )
    return sql, [domain_id, *params, limit, offset]


def count_workflows_sql(domain_id: str, query: VisibilityQuery) -> tuple[str, list[Any]]:
    where, params, _ = _compile(query)
    return f"SELECT count(*) FROM executions_visibility WHERE domain_id = ? AND ({where})", [
        domain_id,
        *params,
    ]
