"""Visibility rows and the basic-visibility lists (`visibility.py` plans the queries).

A run has a row in ``visibility_by_start`` and, once closed, one in
``visibility_by_close``; ``visibility_runs`` remembers their clustering keys so that
an upsert can replace them and a delete can find them. The rows are written one by
one (no multi-partition batch: memo and search attributes may exceed Cassandra's
batch size limits), the keys first, so every row stays findable; each write is an
idempotent upsert, so a retry repairs an interrupted one.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Coroutine
from typing import Any

from cadence_fast.persistence.records import VisibilityRecord
from cadence_fast.persistence.visibility_query import VisibilityQuery
from cadence_fast_cassandra import visibility_scan
from cadence_fast_cassandra.base import NO_LIMIT, ConnectedStore, count_of
from cadence_fast_cassandra.driver import Row
from cadence_fast_cassandra.visibility import UnsupportedVisibilityQuery, plan_query

_VIS_COLS = (
    "domain_id, run_id, workflow_id, workflow_type, start_time, execution_time, task_list, close_time, "
    "close_status, history_length, is_cron, memo, search_attributes, update_time"
)
_VIS_TABLE_KEY = {"visibility_by_start": "start_time", "visibility_by_close": "close_time"}


def _visibility(r: Row) -> VisibilityRecord:
    return VisibilityRecord(
        domain_id=r["domain_id"],
        workflow_id=r["workflow_id"],
        run_id=r["run_id"],
        workflow_type=r["workflow_type"] or "",
        start_time=int(r["start_time"] or 0),
        execution_time=int(r["execution_time"] or 0),
        task_list=r["task_list"] or "",
        close_time=None if r["close_time"] is None else int(r["close_time"]),
        close_status=None if r["close_status"] is None else int(r["close_status"]),
        history_length=int(r["history_length"] or 0),
        is_cron=bool(r["is_cron"]),
        memo=r["memo"] or b"",
        search_attributes=json.loads(r["search_attributes"]) if r["search_attributes"] else {},
        update_time=int(r["update_time"] or 0),
    )


class VisibilityStore(ConnectedStore):
    async def upsert_visibility(self, record: VisibilityRecord) -> None:
        c = self._c()
        r = record
        old = await c.execute(
            "SELECT start_time, close_time FROM visibility_runs WHERE domain_id = ? AND run_id = ?",
            (r.domain_id, r.run_id),
        )
        # The run's keys first: a delete can always find every row written after this.
        await c.execute(
            "INSERT INTO visibility_runs (domain_id, run_id, start_time, close_time) VALUES (?, ?, ?, ?)",
            (r.domain_id, r.run_id, r.start_time, r.close_time),
        )
        values = (
            r.workflow_id,
            r.workflow_type,
            r.execution_time,
            r.task_list,
            r.close_status,
            r.close_time is None,
            r.history_length,
            r.is_cron,
            r.memo,
            json.dumps(r.search_attributes or {}, separators=(",", ":"), sort_keys=True),
            r.update_time,
        )
        columns = (
            "workflow_id, workflow_type, execution_time, task_list, close_status, is_open, history_length, is_cron, "
            "memo, search_attributes, update_time"
        )
        writes: list[Coroutine[Any, Any, object]] = [
            c.execute(
                "INSERT INTO visibility_by_start (domain_id, domain_partition, start_time, run_id, close_time, "
                f"{columns}) VALUES (?, 0, ?, ?, ?, {', '.join(['?'] * 11)})",
                (r.domain_id, r.start_time, r.run_id, r.close_time, *values),
            )
        ]
        if r.close_time is not None:
            writes.append(
                c.execute(
                    "INSERT INTO visibility_by_close (domain_id, domain_partition, close_time, run_id, start_time, "
                    f"{columns}) VALUES (?, 0, ?, ?, ?, {', '.join(['?'] * 11)})",
                    (r.domain_id, r.close_time, r.run_id, r.start_time, *values),
                )
            )
        if old:
            before_start, before_close = old[0]["start_time"], old[0]["close_time"]
            if before_start is not None and before_start != r.start_time:
                writes.append(
                    self._delete_vis_row(r.domain_id, r.run_id, "visibility_by_start", before_start)
                )
            if before_close is not None and before_close != r.close_time:
                writes.append(
                    self._delete_vis_row(r.domain_id, r.run_id, "visibility_by_close", before_close)
                )
        await asyncio.gather(*writes)

    async def _delete_vis_row(self, domain_id: str, run_id: str, table: str, time_value: int) -> None:
        column = _VIS_TABLE_KEY[table]
        await self._c().execute(
            f"DELETE FROM {table} WHERE domain_id = ? AND domain_partition = 0 AND {column} = ? AND run_id = ?",
            (domain_id, time_value, run_id),
        )

    async def delete_visibility(self, domain_id: str, run_id: str) -> None:
        c = self._c()
        old = await c.execute(
            "SELECT start_time, close_time FROM visibility_runs WHERE domain_id = ? AND run_id = ?",
            (domain_id, run_id),
        )
        if not old:
            return
        deletes = []
        if old[0]["start_time"] is not None:
            deletes.append(
                self._delete_vis_row(domain_id, run_id, "visibility_by_start", old[0]["start_time"])
            )
        if old[0]["close_time"] is not None:
            deletes.append(
                self._delete_vis_row(domain_id, run_id, "visibility_by_close", old[0]["close_time"])
            )
        await asyncio.gather(*deletes)
        await c.execute("DELETE FROM visibility_runs WHERE domain_id = ? AND run_id = ?", (domain_id, run_id))

    async def _scan(self, domain_id: str, refusal: UnsupportedVisibilityQuery) -> list[VisibilityRecord]:
        """Every run of the domain, for a query the tables cannot serve (bounded: `visibility_scan`)."""
        limit = self._cfg().visibility_scan_limit
        if limit <= 0:
            raise refusal
        rows = await self._c().execute(
            f"SELECT {_VIS_COLS} FROM visibility_by_start WHERE domain_id = ? AND domain_partition = 0 LIMIT ?",
            (domain_id, limit + 1),
        )
        if len(rows) > limit:
            raise UnsupportedVisibilityQuery(
                f"{refusal}; other queries are evaluated over a scan of the domain's runs, and this domain has "
                f"more than {limit} (the store URL's visibility_scan_limit)"
            )
        return [_visibility(r) for r in rows]

    async def list_workflows(
        self, domain_id: str, query: VisibilityQuery, page_size: int, next_page_token: bytes | None
    ) -> tuple[list[VisibilityRecord], bytes | None]:
        try:
            plan = plan_query(query)
        except UnsupportedVisibilityQuery as refusal:
            return visibility_scan.run_query(
                query, await self._scan(domain_id, refusal), page_size, next_page_token
            )
        where, params = plan.where(plan.decode_token(next_page_token))
        limit = page_size + 1 if page_size > 0 else NO_LIMIT
        rows = await self._c().execute(
            f"SELECT {_VIS_COLS} FROM {plan.table} WHERE domain_id = ? AND domain_partition = 0{where} "
            f"ORDER BY {plan.order_by()} LIMIT ?" + (" ALLOW FILTERING" if plan.needs_filtering else ""),
            (domain_id, *params, limit),
        )
        records = [_visibility(r) for r in rows]
        if page_size > 0 and len(records) > page_size:
            records = records[:page_size]
            return records, plan.page_token(records[-1])
        return records, None

    async def count_workflows(self, domain_id: str, query: VisibilityQuery) -> int:
        try:
            plan = plan_query(query)
        except UnsupportedVisibilityQuery as refusal:
            records = await self._scan(domain_id, refusal)
            return sum(1 for r in records if visibility_scan.matches(query.where, r))
        where, params = plan.where(None)
        return count_of(
            await self._c().execute(
                f"SELECT count(*) FROM {plan.table} WHERE domain_id = ? AND domain_partition = 0{where}"
                + (" ALLOW FILTERING" if plan.needs_filtering else ""),
                (domain_id, *params),
            )
        )
