"""Conformance cases: task lists and backlog, visibility, payload limits and unicode."""

from __future__ import annotations

import asyncio
import time

import pytest

from cadence_fast.persistence.errors import (
    ConditionFailed,
    StoreError,
)
from cadence_fast.persistence.records import (
    CloseStatus,
    DomainRecord,
    MapKind,
    TaskListRecord,
    TaskListTask,
    TaskListType,
)
from cadence_fast.persistence.registry import create_store
from cadence_fast.persistence.store import Store
from cadence_fast.persistence.testing.checks import MB, system_attr
from cadence_fast.persistence.testing.factories import (
    batch,
    create_op,
    owned_shard,
    uid,
    update_op,
    visibility,
)
from cadence_fast.persistence.visibility_query import (
    Attr,
    AttrType,
    Compare,
    IsNull,
    OrderBy,
    VisibilityQuery,
)

# --- task lists --------------------------------------------------------------------------


class TestTaskLists:
    async def test_lease_bumps_range(self, store: Store) -> None:
        domain, name = uid(), uid("tl-")
        first = await store.lease_task_list(domain, name, TaskListType.DECISION, 1)
        assert (first.domain_id, first.name, first.task_type, first.range_id, first.ack_level) == (
            domain,
            name,
            TaskListType.DECISION,
            1,
            0,
        )
        second = await store.lease_task_list(domain, name, TaskListType.DECISION, 1)
        assert second.range_id == 2
        other_type = await store.lease_task_list(domain, name, TaskListType.ACTIVITY, 1)
        assert other_type.range_id == 1
        listed = await store.list_task_lists(domain)
        assert sorted((t.name, t.task_type, t.range_id) for t in listed) == [
            (name, TaskListType.DECISION, 2),
            (name, TaskListType.ACTIVITY, 1),
        ]
        assert await store.list_task_lists(uid()) == []

    async def test_concurrent_leases_get_distinct_ranges(self, store: Store) -> None:
        domain, name = uid(), uid("tl-")
        leases = await asyncio.gather(
            *(store.lease_task_list(domain, name, TaskListType.DECISION, 1) for _ in range(6))
        )
        assert sorted(t.range_id for t in leases) == [1, 2, 3, 4, 5, 6]

    async def test_update_with_range_condition(self, store: Store) -> None:
        domain, name = uid(), uid("tl-")
        tl = await store.lease_task_list(domain, name, TaskListType.ACTIVITY, 1)
        tl.ack_level, tl.data = 17, b"tl-data"
        await store.update_task_list(tl)
        [got] = await store.list_task_lists(domain)
        assert (got.ack_level, got.data, got.range_id) == (17, b"tl-data", tl.range_id)
        await store.lease_task_list(domain, name, TaskListType.ACTIVITY, 1)  # someone else took it
        tl.ack_level = 99
        with pytest.raises(ConditionFailed):
            await store.update_task_list(tl)
        [got] = await store.list_task_lists(domain)
        assert got.ack_level == 17
        with pytest.raises(ConditionFailed):
            await store.update_task_list(
                TaskListRecord(domain, uid("tl-"), TaskListType.DECISION, range_id=1)
            )

    async def test_backlog_tasks(self, store: Store) -> None:
        domain, name, tt = uid(), uid("tl-"), TaskListType.DECISION
        tl = await store.lease_task_list(domain, name, tt, 1)
        tasks = [
            TaskListTask(i, f"task {i}".encode(), created_time=i * 10, expiry_time=i * 100)
            for i in (4, 1, 3, 2, 5)
        ]
        await store.create_tasks(domain, name, tt, tl.range_id, tasks)
        got = await store.get_tasks(domain, name, tt, 1, 4, 100)
        assert [(t.task_id, t.data, t.created_time, t.expiry_time) for t in got] == [
            (2, b"task 2", 20, 200),
            (3, b"task 3", 30, 300),
            (4, b"task 4", 40, 400),
        ]
        assert [t.task_id for t in await store.get_tasks(domain, name, tt, 0, 100, 2)] == [1, 2]
        assert await store.get_tasks(domain, name, TaskListType.ACTIVITY, 0, 100, 100) == []
        assert await store.count_tasks(domain, name, tt, 0) == 5
        assert await store.count_tasks(domain, name, tt, 3) == 2
        await store.complete_task(domain, name, tt, 3)
        await store.complete_task(domain, name, tt, 3)  # idempotent
        assert await store.complete_tasks_less_than(domain, name, tt, 2) == 2
        assert [t.task_id for t in await store.get_tasks(domain, name, tt, 0, 100, 100)] == [4, 5]
        assert await store.count_tasks(domain, name, tt, 0) == 2

    async def test_create_tasks_with_stale_range(self, store: Store) -> None:
        domain, name, tt = uid(), uid("tl-"), TaskListType.ACTIVITY
        old = await store.lease_task_list(domain, name, tt, 1)
        await store.lease_task_list(domain, name, tt, 1)
        with pytest.raises(ConditionFailed):
            await store.create_tasks(domain, name, tt, old.range_id, [TaskListTask(1, b"x")])
        assert await store.count_tasks(domain, name, tt, 0) == 0
        with pytest.raises(ConditionFailed):
            await store.create_tasks(domain, uid("tl-"), tt, 1, [TaskListTask(1, b"x")])

    async def test_delete_task_list(self, store: Store) -> None:
        domain, name, tt = uid(), uid("tl-"), TaskListType.DECISION
        tl = await store.lease_task_list(domain, name, tt, 2)
        await store.create_tasks(
            domain, name, tt, tl.range_id, [TaskListTask(1, b"x"), TaskListTask(2, b"y")]
        )
        with pytest.raises(ConditionFailed):
            await store.delete_task_list(domain, name, tt, tl.range_id + 1)
        assert len(await store.list_task_lists(domain)) == 1
        await store.delete_task_list(domain, name, tt, tl.range_id)
        assert await store.list_task_lists(domain) == []
        assert await store.count_tasks(domain, name, tt, 0) == 0
        again = await store.lease_task_list(domain, name, tt, 2)
        assert again.range_id == 1


# --- visibility --------------------------------------------------------------------------


class TestVisibility:
    async def test_upsert_list_count_delete(self, store: Store) -> None:
        domain = uid()
        base = 1_700_000_000_000_000_000
        rows = [
            visibility(domain, f"wf-{i}", uid(), start_time=base + i, workflow_type="T" if i % 2 else "U")
            for i in range(5)
        ]
        for r in rows:
            await store.upsert_visibility(r)
        await store.upsert_visibility(visibility(uid(), "elsewhere", uid()))  # another domain
        listed, token = await store.list_workflows(domain, VisibilityQuery(), 0, None)
        assert token is None
        assert [r.workflow_id for r in listed] == [f"wf-{i}" for i in (4, 3, 2, 1, 0)], "newest start first"
        assert await store.count_workflows(domain, VisibilityQuery()) == 5
        # Paging.
        seen: list[str] = []
        token = None
        while True:
            page, token = await store.list_workflows(domain, VisibilityQuery(), 2, token)
            assert len(page) <= 2
            seen.extend(r.workflow_id for r in page)
            if token is None:
                break
        assert seen == [r.workflow_id for r in listed]
        # Close one (replace), then filter.
        closed = rows[1]
        closed.close_time, closed.close_status, closed.history_length = base + 100, CloseStatus.COMPLETED, 11
        await store.upsert_visibility(closed)
        open_q = VisibilityQuery(where=IsNull(system_attr("CloseTime")))
        assert await store.count_workflows(domain, open_q) == 4
        closed_q = VisibilityQuery(where=IsNull(system_attr("CloseTime"), negated=True))
        [got], _ = await store.list_workflows(domain, closed_q, 10, None)
        assert (got.run_id, got.close_time, got.close_status, got.history_length) == (
            closed.run_id,
            base + 100,
            CloseStatus.COMPLETED,
            11,
        )
        by_type = VisibilityQuery(where=Compare(system_attr("WorkflowType"), "=", "T"))
        assert await store.count_workflows(domain, by_type) == 2
        oldest_first = VisibilityQuery(order_by=(OrderBy(system_attr("StartTime"), descending=False),))
        asc, _ = await store.list_workflows(domain, oldest_first, 10, None)
        assert [r.workflow_id for r in asc] == [f"wf-{i}" for i in range(5)]
        await store.delete_visibility(domain, rows[0].run_id)
        assert await store.count_workflows(domain, VisibilityQuery()) == 4

    async def test_pages_are_stable_with_ties_and_concurrent_starts(self, store: Store) -> None:
        """Equal start times page by the run id tiebreak; a row started between pages shifts nothing."""
        domain = uid()
        same = 1_700_000_000_000_000_000
        rows = [visibility(domain, f"wf-{i}", uid(), start_time=same) for i in range(7)]
        for r in rows:
            await store.upsert_visibility(r)
        seen: list[str] = []
        token: bytes | None = None
        first_page = True
        while True:
            page, token = await store.list_workflows(domain, VisibilityQuery(), 3, token)
            seen.extend(r.run_id for r in page)
            if first_page:
                await store.upsert_visibility(visibility(domain, "late", uid(), start_time=same + 1))
                first_page = False
            if token is None:
                break
        assert sorted(seen) == sorted(r.run_id for r in rows), "every row exactly once, none repeated"
        assert len(seen) == len(set(seen))
        assert await store.count_workflows(domain, VisibilityQuery()) == 8

    async def test_custom_search_attributes_filter_and_order(self, store: Store) -> None:
        domain = uid()
        keyword = Attr("CustomKeywordField", AttrType.KEYWORD, custom=True)
        number = Attr("CustomIntField", AttrType.INT, custom=True)
        for i in range(6):
            attrs: dict[str, object] = {"CustomIntField": i * 10}
            if i % 2 == 0:
                attrs["CustomKeywordField"] = "even"
            await store.upsert_visibility(visibility(domain, f"wf-{i}", uid(), search_attributes=attrs))
        even = VisibilityQuery(where=Compare(keyword, "=", "even"))
        assert await store.count_workflows(domain, even) == 3
        big = VisibilityQuery(where=Compare(number, ">=", 30), order_by=(OrderBy(number, descending=True),))
        rows, _ = await store.list_workflows(domain, big, 10, None)
        assert [r.workflow_id for r in rows] == ["wf-5", "wf-4", "wf-3"]
        missing = VisibilityQuery(where=IsNull(keyword))
        assert await store.count_workflows(domain, missing) == 3

    async def test_record_fields_round_trip(self, store: Store) -> None:
        domain = uid()
        rec = visibility(
            domain,
            "wf-ünïcødé-工作流",
            uid(),
            workflow_type="类型.Workflow",
            task_list="tl-ß",
            is_cron=True,
            memo=b"\x0a\x03memo\x00\xff",
            search_attributes={"CustomKeywordField": "k-ä", "CustomIntField": 7, "CustomBoolField": True},
            update_time=123,
        )
        await store.upsert_visibility(rec)
        [got], _ = await store.list_workflows(domain, VisibilityQuery(), 10, None)
        assert got == rec

    async def test_upsert_replaces_every_field(self, store: Store) -> None:
        """A second upsert of a run replaces the whole record, whichever fields changed: the
        ones a close changes, and the ones that name the run in listings (a store may write
        the two cases differently)."""
        domain, run_id = uid(), uid()
        first = visibility(domain, "wf-a", run_id, workflow_type="A", start_time=1_000, task_list="tl-1")
        await store.upsert_visibility(first)
        closed = visibility(
            domain, "wf-a", run_id, workflow_type="A", start_time=1_000, execution_time=1_500, task_list="tl-2",
            close_time=2_000, close_status=CloseStatus.FAILED, history_length=9, is_cron=True, memo=b"m",
            search_attributes={"CustomIntField": 3}, update_time=2_001,
        )  # fmt: skip
        await store.upsert_visibility(closed)
        [got], _ = await store.list_workflows(domain, VisibilityQuery(), 10, None)
        assert got == closed
        renamed = visibility(domain, "wf-b", run_id, workflow_type="B", start_time=3_000, task_list="tl-3")
        await store.upsert_visibility(renamed)
        [got], _ = await store.list_workflows(domain, VisibilityQuery(), 10, None)
        assert got == renamed
        open_q = VisibilityQuery(where=IsNull(system_attr("CloseTime")))
        assert [r.run_id for r in (await store.list_workflows(domain, open_q, 10, None))[0]] == [run_id]
        for type_name, expected in (("A", 0), ("B", 1)):
            by_type = VisibilityQuery(where=Compare(system_attr("WorkflowType"), "=", type_name))
            assert await store.count_workflows(domain, by_type) == expected
        by_id = VisibilityQuery(where=Compare(system_attr("WorkflowID"), "=", "wf-a"))
        assert await store.count_workflows(domain, by_id) == 0

    async def test_written_by_commit(self, store: Store) -> None:
        sid, rng = await owned_shard(store)
        domain, wf = uid(), uid("wf-")
        op = create_op(domain, wf, with_visibility=True)
        await store.commit(sid, rng, [op])
        vis = visibility(
            domain, wf, op.snapshot.run_id, close_time=time.time_ns(), close_status=CloseStatus.FAILED
        )
        await store.commit(sid, rng, [update_op(op, close=CloseStatus.FAILED, visibility=vis)])
        [got], _ = await store.list_workflows(domain, VisibilityQuery(), 10, None)
        assert (got.run_id, got.close_status) == (op.snapshot.run_id, CloseStatus.FAILED)


# --- limits ------------------------------------------------------------------------------


class TestLimits:
    async def test_two_megabyte_payloads(self, store: Store) -> None:
        sid, rng = await owned_shard(store)
        domain, wf = uid(), uid("wf-")
        big = bytes(range(256)) * (2 * MB // 256)
        op = create_op(domain, wf, info=big, maps={MapKind.ACTIVITY: {"5": big}}, history=[batch(1, 2, big)])
        assert await store.commit(sid, rng, [op]) == [None]
        got = await store.get_execution(sid, domain, wf, op.snapshot.run_id)
        assert got.info == big and got.maps[MapKind.ACTIVITY]["5"] == big
        batches, _ = await store.read_history(sid, domain, wf, op.snapshot.run_id, 1, 3, 0, None)
        assert batches[0].data == big
        tl = await store.lease_task_list(domain, "big", TaskListType.ACTIVITY, 1)
        await store.create_tasks(domain, "big", TaskListType.ACTIVITY, tl.range_id, [TaskListTask(1, big)])
        assert (await store.get_tasks(domain, "big", TaskListType.ACTIVITY, 0, 10, 10))[0].data == big

    async def test_unicode_ids(self, store: Store) -> None:
        sid, rng = await owned_shard(store)
        domain = uid()
        wf = "wörkflow-工作流-🚀-" + uid()
        op = create_op(domain, wf, maps={MapKind.TIMER: {"таймер-⏰": b"t"}})
        await store.commit(sid, rng, [op])
        got = await store.get_execution(sid, domain, wf, op.snapshot.run_id)
        assert got.workflow_id == wf and got.maps == {MapKind.TIMER: {"таймер-⏰": b"t"}}
        assert (await store.get_current_execution(sid, domain, wf)).run_id == op.snapshot.run_id
        d = DomainRecord(uid(), "домен-" + uid(), 0, b"")
        await store.create_domain(d)
        assert (await store.get_domain(name=d.name)).domain_id == d.domain_id
        tl_name = "タスク-" + uid()
        tl = await store.lease_task_list(domain, tl_name, TaskListType.DECISION, 1)
        assert tl.name == tl_name

    async def test_closed_store_refuses_calls(self, store: Store, store_url: str) -> None:
        other = create_store(store_url)
        await other.open(create_schema=True)
        await other.get_metadata_version()
        await other.close()
        with pytest.raises((StoreError, RuntimeError)):
            await other.get_metadata_version()
