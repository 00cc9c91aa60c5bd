"""Visibility listing SQL for SQLite: the query AST compiled by the shared compiler.

`cadence_fast.persistence.sqlvisibility.compile_query` (shared with the PostgreSQL
and MySQL plugins) turns a VisibilityQuery into a WHERE expression, its parameters
and an ORDER BY list over `executions_visibility`. Pages are keyset pages: the token
carries the sort values of a page's last row, so rows started or closed meanwhile
never shift a page (OFFSET would).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from cadence_fast.persistence.records import VisibilityRecord
from cadence_fast.persistence.sqlite.base import SQLiteBase
from cadence_fast.persistence.sqlite.executions import upsert_visibility, visibility_params
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


_VISIBILITY_COLUMNS = (
    "domain_id, workflow_id, run_id, workflow_type, start_time, execution_time, task_list, close_time, "
    "close_status, history_length, is_cron, memo, search_attributes, update_time"
)


def _visibility(row: Sequence[Any]) -> VisibilityRecord:
    return VisibilityRecord(
        domain_id=row[0],
        workflow_id=row[1],
        run_id=row[2],
        workflow_type=row[3],
        start_time=row[4],
        execution_time=row[5],
        task_list=row[6],
        close_time=row[7],
        close_status=row[8],
        history_length=row[9],
        is_cron=bool(row[10]),
        memo=row[11],
        search_attributes=json.loads(row[12]) if row[12] else {},
        update_time=row[13],
    )


class Visibility(SQLiteBase):
    # --- visibility -------------------------------------------------------------------

    async def upsert_visibility(self, record: VisibilityRecord) -> None:
        params = visibility_params(record)
        await self._write(lambda c: upsert_visibility(c, params))

    async def delete_visibility(self, domain_id: str, run_id: str) -> None:
        await self._write(
            lambda c: (
                c.execute(
                    "DELETE FROM executions_visibility WHERE domain_id = ? AND run_id = ?",
                    (domain_id, run_id),
                )
                and None
            )
        )

    async def list_workflows(
        self, domain_id: str, query: VisibilityQuery, page_size: int, next_page_token: bytes | None
    ) -> tuple[list[VisibilityRecord], bytes | None]:
        limit = page_size + 1 if page_size > 0 else -1
        cq, sql, params = list_workflows_sql(_VISIBILITY_COLUMNS, domain_id, query, limit, next_page_token)
        rows = await self._read_slow(lambda c: c.execute(sql, params).fetchall())
        records = [_visibility(r) for r in rows]
        if page_size > 0 and len(records) > page_size:
            records = records[:page_size]
            return records, cq.page_token(records[-1])
        return records, None

    async def count_workflows(self, domain_id: str, query: VisibilityQuery) -> int:
        sql, params = count_workflows_sql(domain_id, query)
        row = await self._read_slow(lambda c: c.execute(sql, params).fetchone())
        return int(row[0])
