"""Visibility listing SQL for SQLite: the query AST compiled by the shared compiler.

`cadence_fast.persistence.sqlvisibility.compile_query` (shared with the PostgreSQL
and MySQL plugins) turns a VisibilityQuery into a WHERE expression, its parameters
and an ORDER BY list over `executions_visibility`. Pages are keyset pages: the token
carries the sort values of a page's last row, so rows started or closed meanwhile
never shift a page (OFFSET would).
"""

from __future__ import annotations

from typing import Any

from cadence_fast.persistence.sqlvisibility import CompiledQuery, compile_query
from cadence_fast.persistence.visibility_query import VisibilityQuery


def list_workflows_sql(
    columns: str, domain_id: str, query: VisibilityQuery, limit: int, next_page_token: bytes | None
) -> tuple[CompiledQuery, str, list[Any]]:
    """The compiled query (for page tokens), the SELECT and its parameters."""
    cq = compile_query(query, dialect="sqlite")
    where, params = f"domain_id = ? AND ({cq.where})", [domain_id, *cq.params]
    if next_page_token:
        seek_sql, seek_params = cq.after_token(next_page_token)  # BadRequestError if malformed
        where, params = f"{where} AND ({seek_sql})", [*params, *seek_params]
    sql = f"SELECT {columns} FROM executions_visibility WHERE {where} ORDER BY {cq.order_by} LIMIT ?"
    return cq, sql, [*params, limit]


def count_workflows_sql(domain_id: str, query: VisibilityQuery) -> tuple[str, list[Any]]:
    cq = compile_query(query, dialect="sqlite")
    return f"SELECT count(*) FROM executions_visibility WHERE domain_id = ? AND ({cq.where})", [
        domain_id,
        *cq.params,
    ]
