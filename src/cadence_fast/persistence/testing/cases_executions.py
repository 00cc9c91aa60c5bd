"""Conformance cases: workflow creates and updates, their conditions, group commits."""

from __future__ import annotations

import asyncio

import pytest

from cadence_fast.persistence.errors import (
    AlreadyExists,
    ConditionFailed,
    NotFound,
    ShardOwnershipLost,
)
from cadence_fast.persistence.records import (
    CloseStatus,
    CreateMode,
    CreateWorkflow,
    MapKind,
    UpdateWorkflow,
    WorkflowState,
)
from cadence_fast.persistence.store import Store
from cadence_fast.persistence.testing.checks import absent, history_of
from cadence_fast.persistence.testing.factories import (
    batch,
    create_op,
    owned_shard,
    timer_task,
    transfer_task,
    uid,
    update_op,
    visibility,
)
from cadence_fast.persistence.visibility_query import (
    VisibilityQuery,
)

# --- executions --------------------------------------------------------------------------


async def _closed_then_reused(store: Store) -> tuple[int, int, str, str, CreateWorkflow, CreateWorkflow]:
    """A workflow id whose first run completed and whose second run (id reuse) is current."""
    sid, rng = await owned_shard(store)
    domain, wf = uid(), uid("wf-")
    first = create_op(domain, wf)
    await store.commit(sid, rng, [first])
    await store.commit(sid, rng, [update_op(first, close=CloseStatus.COMPLETED)])
    second = create_op(domain, wf, mode=CreateMode.WORKFLOW_ID_REUSE, previous_run_id=first.snapshot.run_id)
    await store.commit(sid, rng, [second])
    return sid, rng, domain, wf, first, second


class TestCreateWorkflow:
    async def test_brand_new_writes_everything(self, store: Store) -> None:
        sid, rng = await owned_shard(store)
        domain, wf = uid(), uid("wf-")
        op = create_op(
            domain,
            wf,
            maps={MapKind.ACTIVITY: {"5": b"a5", "7": b"a7"}, MapKind.BUFFERED_EVENT: {"000001": b"e"}},
            history=[batch(1, 2)],
            transfer=[transfer_task(domain, wf, "r", 100)],
            timers=[timer_task(domain, wf, "r", 5_000, 101)],
            with_visibility=True,
        )
        s = op.snapshot
        assert await store.commit(sid, rng, [op]) == [None]
        got = await store.get_execution(sid, domain, wf, s.run_id)
        assert (got.domain_id, got.workflow_id, got.run_id) == (domain, wf, s.run_id)
        assert (got.next_event_id, got.state, got.close_status) == (
            3,
            WorkflowState.RUNNING,
            CloseStatus.NONE,
        )
        assert (got.create_request_id, got.start_time, got.info) == (
            s.create_request_id,
            s.start_time,
            s.info,
        )
        assert got.maps == {
            MapKind.ACTIVITY: {"5": b"a5", "7": b"a7"},
            MapKind.BUFFERED_EVENT: {"000001": b"e"},
        }
        cur = await store.get_current_execution(sid, domain, wf)
        assert (cur.run_id, cur.state, cur.close_status) == (
            s.run_id,
            WorkflowState.RUNNING,
            CloseStatus.NONE,
        )
        assert (cur.create_request_id, cur.start_time) == (s.create_request_id, s.start_time)
        assert await history_of(store, sid, domain, wf, s.run_id) == [(1, 2)]
        assert [t.task_id for t in await store.get_transfer_tasks(sid, 0, 1 << 62, 100)] == [100]
        assert [t.task_id for t in await store.get_timer_tasks(sid, 0, 0, 1 << 62, 100)] == [101]
        listed, _ = await store.list_workflows(domain, VisibilityQuery(), 10, None)
        assert [r.run_id for r in listed] == [s.run_id]

    async def test_brand_new_duplicate_names_the_current_run(self, store: Store) -> None:
        sid, rng = await owned_shard(store)
        domain, wf = uid(), uid("wf-")
        first = create_op(domain, wf)
        await store.commit(sid, rng, [first])
        second = create_op(domain, wf, transfer=[transfer_task(domain, wf, "x", 9)])
        [err] = await store.commit(sid, rng, [second])
        assert isinstance(err, AlreadyExists)
        assert err.current is not None
        assert err.current.run_id == first.snapshot.run_id
        assert err.current.create_request_id == first.snapshot.create_request_id
        assert err.current.state == WorkflowState.RUNNING
        await absent(store, sid, domain, wf, second.snapshot.run_id)
        assert await store.get_transfer_tasks(sid, 0, 1 << 62, 10) == []
        assert (await store.get_current_execution(sid, domain, wf)).run_id == first.snapshot.run_id

    async def test_reuse_closed_run(self, store: Store) -> None:
        sid, rng = await owned_shard(store)
        domain, wf = uid(), uid("wf-")
        first = create_op(domain, wf)
        await store.commit(sid, rng, [first])
        await store.commit(sid, rng, [update_op(first, close=CloseStatus.COMPLETED)])
        cur = await store.get_current_execution(sid, domain, wf)
        assert (cur.state, cur.close_status) == (WorkflowState.COMPLETED, CloseStatus.COMPLETED)
        # BRAND_NEW still refuses: the closed run is current.
        [err] = await store.commit(sid, rng, [create_op(domain, wf)])
        assert isinstance(err, AlreadyExists) and err.current is not None
        assert err.current.state == WorkflowState.COMPLETED
        second = create_op(
            domain, wf, mode=CreateMode.WORKFLOW_ID_REUSE, previous_run_id=first.snapshot.run_id
        )
        assert await store.commit(sid, rng, [second]) == [None]
        assert (await store.get_current_execution(sid, domain, wf)).run_id == second.snapshot.run_id
        # Both runs stay readable.
        await store.get_execution(sid, domain, wf, first.snapshot.run_id)
        await store.get_execution(sid, domain, wf, second.snapshot.run_id)

    async def test_reuse_refused_while_open_or_for_another_run(self, store: Store) -> None:
        sid, rng = await owned_shard(store)
        domain, wf = uid(), uid("wf-")
        first = create_op(domain, wf)
        await store.commit(sid, rng, [first])
        while_open = create_op(
            domain, wf, mode=CreateMode.WORKFLOW_ID_REUSE, previous_run_id=first.snapshot.run_id
        )
        wrong_prev = create_op(domain, wf, mode=CreateMode.WORKFLOW_ID_REUSE, previous_run_id=uid())
        no_current = create_op(domain, uid("wf-"), mode=CreateMode.WORKFLOW_ID_REUSE, previous_run_id=uid())
        results = await store.commit(sid, rng, [while_open, wrong_prev, no_current])
        for r in results:
            assert isinstance(r, ConditionFailed | AlreadyExists), r
        for op in (while_open, wrong_prev, no_current):
            await absent(store, sid, domain, op.snapshot.workflow_id, op.snapshot.run_id)
        assert (await store.get_current_execution(sid, domain, wf)).run_id == first.snapshot.run_id

    async def test_same_run_id_twice(self, store: Store) -> None:
        sid, rng = await owned_shard(store)
        domain, wf = uid(), uid("wf-")
        first = create_op(domain, wf)
        await store.commit(sid, rng, [first])
        await store.commit(sid, rng, [update_op(first, close=CloseStatus.FAILED)])
        again = create_op(
            domain,
            wf,
            first.snapshot.run_id,
            mode=CreateMode.WORKFLOW_ID_REUSE,
            previous_run_id=first.snapshot.run_id,
        )
        [err] = await store.commit(sid, rng, [again])
        assert isinstance(err, AlreadyExists | ConditionFailed)
        got = await store.get_execution(sid, domain, wf, first.snapshot.run_id)
        assert got.state == WorkflowState.COMPLETED

    async def test_get_missing(self, store: Store) -> None:
        sid, _ = await owned_shard(store)
        with pytest.raises(NotFound):
            await store.get_execution(sid, uid(), "nope", uid())
        with pytest.raises(NotFound):
            await store.get_current_execution(sid, uid(), "nope")

    async def test_delete_execution(self, store: Store) -> None:
        sid, rng = await owned_shard(store)
        domain, wf = uid(), uid("wf-")
        op = create_op(domain, wf, history=[batch(1, 2)])
        await store.commit(sid, rng, [op])
        await store.commit(sid, rng, [update_op(op, close=CloseStatus.COMPLETED)])
        await store.delete_execution(sid, domain, wf, op.snapshot.run_id)
        await absent(store, sid, domain, wf, op.snapshot.run_id)
        with pytest.raises(NotFound):
            await store.get_current_execution(sid, domain, wf)
        await store.delete_execution(sid, domain, wf, op.snapshot.run_id)  # idempotent

    async def test_delete_old_run_keeps_the_current_row(self, store: Store) -> None:
        sid, rng, domain, wf, first, second = await _closed_then_reused(store)
        await store.delete_execution(sid, domain, wf, first.snapshot.run_id)
        assert (await store.get_current_execution(sid, domain, wf)).run_id == second.snapshot.run_id
        await store.get_execution(sid, domain, wf, second.snapshot.run_id)


class TestUpdateWorkflow:
    async def test_update_writes_the_delta(self, store: Store) -> None:
        sid, rng = await owned_shard(store)
        domain, wf = uid(), uid("wf-")
        op = create_op(
            domain, wf, maps={MapKind.ACTIVITY: {"5": b"a5", "6": b"a6"}, MapKind.TIMER: {"t": b"t"}}
        )
        await store.commit(sid, rng, [op])
        run = op.snapshot.run_id
        upd = update_op(
            op,
            events=3,
            map_upserts=[(MapKind.ACTIVITY, "5", b"a5-started"), (MapKind.SIGNAL, "9", b"s9")],
            map_deletes=[(MapKind.ACTIVITY, "6"), (MapKind.TIMER, "absent-key")],
            transfer_tasks=[transfer_task(domain, wf, run, 200)],
            timer_tasks=[timer_task(domain, wf, run, 9_000, 201)],
        )
        assert await store.commit(sid, rng, [upd]) == [None]
        got = await store.get_execution(sid, domain, wf, run)
        assert (got.next_event_id, got.info) == (6, b"info@6")
        assert got.maps == {
            MapKind.ACTIVITY: {"5": b"a5-started"},
            MapKind.TIMER: {"t": b"t"},
            MapKind.SIGNAL: {"9": b"s9"},
        }
        assert await history_of(store, sid, domain, wf, run) == [(1, 2), (3, 5)]
        assert [t.task_id for t in await store.get_transfer_tasks(sid, 0, 1 << 62, 10)] == [200]
        assert [t.task_id for t in await store.get_timer_tasks(sid, 0, 0, 1 << 62, 10)] == [201]

    async def test_stale_next_event_id_writes_nothing(self, store: Store) -> None:
        sid, rng = await owned_shard(store)
        domain, wf = uid(), uid("wf-")
        op = create_op(domain, wf)
        await store.commit(sid, rng, [op])
        run = op.snapshot.run_id
        assert await store.commit(sid, rng, [update_op(op)]) == [None]  # 3 -> 5
        stale = update_op(
            op,
            condition=3,
            events=4,
            close=CloseStatus.COMPLETED,
            map_upserts=[(MapKind.ACTIVITY, "5", b"stale")],
            map_deletes=[(MapKind.TIMER, "t1")],
            transfer_tasks=[transfer_task(domain, wf, run, 300)],
            timer_tasks=[timer_task(domain, wf, run, 1, 301)],
            visibility=visibility(domain, wf, run),
        )
        stale.history = [batch(7, 10)]
        [err] = await store.commit(sid, rng, [stale])
        assert isinstance(err, ConditionFailed)
        got = await store.get_execution(sid, domain, wf, run)
        assert (got.next_event_id, got.state, got.info) == (5, WorkflowState.RUNNING, b"info@5")
        assert got.maps == op.snapshot.maps
        assert await history_of(store, sid, domain, wf, run) == [(1, 2), (3, 4)]
        assert await store.get_transfer_tasks(sid, 0, 1 << 62, 10) == []
        assert await store.get_timer_tasks(sid, 0, 0, 1 << 62, 10) == []
        assert (await store.list_workflows(domain, VisibilityQuery(), 10, None))[0] == []
        assert (await store.get_current_execution(sid, domain, wf)).state == WorkflowState.RUNNING

    async def test_update_of_missing_run(self, store: Store) -> None:
        sid, rng = await owned_shard(store)
        ghost = create_op(uid(), uid("wf-"))
        [err] = await store.commit(sid, rng, [update_op(ghost, update_current=False)])
        assert isinstance(err, ConditionFailed)
        await absent(store, sid, ghost.snapshot.domain_id, ghost.snapshot.workflow_id, ghost.snapshot.run_id)

    async def test_update_current_requires_this_run_to_be_current(self, store: Store) -> None:
        sid, rng, domain, wf, first, second = await _closed_then_reused(store)
        # The old run is no longer current: update_current=True fails ...
        [err] = await store.commit(sid, rng, [update_op(first, condition=5, events=1)])
        assert isinstance(err, ConditionFailed)
        assert (await store.get_execution(sid, domain, wf, first.snapshot.run_id)).next_event_id == 5
        # ... update_current=False writes the old run and leaves the current row alone.
        assert await store.commit(
            sid, rng, [update_op(first, condition=5, events=1, update_current=False)]
        ) == [None]
        assert (await store.get_execution(sid, domain, wf, first.snapshot.run_id)).next_event_id == 6
        cur = await store.get_current_execution(sid, domain, wf)
        assert (cur.run_id, cur.state) == (second.snapshot.run_id, WorkflowState.RUNNING)

    async def test_close_updates_the_current_row(self, store: Store) -> None:
        sid, rng = await owned_shard(store)
        domain, wf = uid(), uid("wf-")
        op = create_op(domain, wf)
        await store.commit(sid, rng, [op])
        await store.commit(sid, rng, [update_op(op, close=CloseStatus.TERMINATED)])
        cur = await store.get_current_execution(sid, domain, wf)
        assert (cur.run_id, cur.state, cur.close_status) == (
            op.snapshot.run_id,
            WorkflowState.COMPLETED,
            CloseStatus.TERMINATED,
        )
        assert cur.create_request_id == op.snapshot.create_request_id

    async def test_continue_as_new_swings_current(self, store: Store) -> None:
        sid, rng = await owned_shard(store)
        domain, wf = uid(), uid("wf-")
        first = create_op(domain, wf)
        await store.commit(sid, rng, [first])
        new_run = create_op(
            domain,
            wf,
            mode=CreateMode.CONTINUE_AS_NEW,
            previous_run_id=first.snapshot.run_id,
            history=[batch(1, 2, b"new run events")],
            with_visibility=True,
        )
        close = update_op(first, close=CloseStatus.CONTINUED_AS_NEW, new_run=new_run)
        assert await store.commit(sid, rng, [close]) == [None]
        cur = await store.get_current_execution(sid, domain, wf)
        assert (cur.run_id, cur.state) == (new_run.snapshot.run_id, WorkflowState.RUNNING)
        old = await store.get_execution(sid, domain, wf, first.snapshot.run_id)
        assert (old.state, old.close_status) == (WorkflowState.COMPLETED, CloseStatus.CONTINUED_AS_NEW)
        batches, _ = await store.read_history(sid, domain, wf, new_run.snapshot.run_id, 1, 100, 0, None)
        assert [b.data for b in batches] == [b"new run events"]

    async def test_continue_as_new_failing_new_run_fails_the_whole_op(self, store: Store) -> None:
        sid, rng = await owned_shard(store)
        domain, wf = uid(), uid("wf-")
        first = create_op(domain, wf)
        await store.commit(sid, rng, [first])
        bad_new_run = create_op(domain, wf, mode=CreateMode.CONTINUE_AS_NEW, previous_run_id=uid())
        [err] = await store.commit(
            sid, rng, [update_op(first, close=CloseStatus.CONTINUED_AS_NEW, new_run=bad_new_run)]
        )
        assert isinstance(err, ConditionFailed | AlreadyExists)
        got = await store.get_execution(sid, domain, wf, first.snapshot.run_id)
        assert (got.next_event_id, got.state) == (3, WorkflowState.RUNNING)
        await absent(store, sid, domain, wf, bad_new_run.snapshot.run_id)
        assert (await store.get_current_execution(sid, domain, wf)).run_id == first.snapshot.run_id

    async def test_concurrent_writers_of_one_run_exactly_one_wins(self, store: Store) -> None:
        sid, rng = await owned_shard(store)
        domain, wf = uid(), uid("wf-")
        op = create_op(domain, wf)
        await store.commit(sid, rng, [op])
        contenders = [update_op(op, info=f"writer {i}".encode()) for i in range(8)]
        results = await asyncio.gather(*(store.commit(sid, rng, [u]) for u in contenders))
        winners = [i for i, [r] in enumerate(results) if r is None]
        assert len(winners) == 1, results
        assert all(isinstance(r, ConditionFailed) for i, [r] in enumerate(results) if i not in winners)
        got = await store.get_execution(sid, domain, wf, op.snapshot.run_id)
        assert (got.next_event_id, got.info) == (5, f"writer {winners[0]}".encode())
        assert await history_of(store, sid, domain, wf, op.snapshot.run_id) == [(1, 2), (3, 4)]

    async def test_a_run_is_read_in_one_snapshot(self, store: Store) -> None:
        """get_execution never mixes the run row of one commit with the maps of another."""
        sid, rng = await owned_shard(store)
        domain, wf = uid(), uid("wf-")
        op = create_op(domain, wf, info=b"v0", maps={MapKind.ACTIVITY: {"k": b"v0"}})
        await store.commit(sid, rng, [op])
        done = False

        async def writer() -> None:
            nonlocal done
            cond = 3
            for n in range(1, 60):
                value = f"v{n}".encode()
                upd = update_op(
                    op, condition=cond, events=1, info=value, map_upserts=[(MapKind.ACTIVITY, "k", value)]
                )
                assert await store.commit(sid, rng, [upd]) == [None]
                cond += 1
            done = True

        async def reader() -> int:
            reads = 0
            while not done:
                got = await store.get_execution(sid, domain, wf, op.snapshot.run_id)
                assert got.maps[MapKind.ACTIVITY]["k"] == got.info, "row and maps from different commits"
                reads += 1
                await asyncio.sleep(0)
            return reads

        _, reads = await asyncio.gather(writer(), reader())
        assert reads > 0


class TestGroupCommit:
    async def test_failing_op_leaves_no_trace_and_the_others_commit(self, store: Store) -> None:
        sid, rng = await owned_shard(store)
        domain = uid()
        existing = create_op(domain, uid("wf-"))
        await store.commit(sid, rng, [existing])
        a = create_op(domain, uid("wf-"), transfer=[transfer_task(domain, "a", "a", 11)])
        b = update_op(existing, condition=99, transfer_tasks=[transfer_task(domain, "b", "b", 12)])
        c = create_op(domain, uid("wf-"), transfer=[transfer_task(domain, "c", "c", 13)])
        results = await store.commit(sid, rng, [a, b, c])
        assert results[0] is None and results[2] is None
        assert isinstance(results[1], ConditionFailed)
        for op in (a, c):
            await store.get_execution(sid, domain, op.snapshot.workflow_id, op.snapshot.run_id)
        assert (
            await store.get_execution(sid, domain, existing.snapshot.workflow_id, existing.snapshot.run_id)
        ).next_event_id == 3
        assert [t.task_id for t in await store.get_transfer_tasks(sid, 0, 1 << 62, 10)] == [11, 13]

    async def test_op_failing_after_its_first_writes_among_concurrent_commits(self, store: Store) -> None:
        """An op that fails after it wrote (its continue-as-new run is refused) leaves no trace,
        alone or inside a multi-op commit, while commits racing it (a store may group them into
        one transaction with it) land whole."""
        sid, rng = await owned_shard(store)
        domain = uid()
        first, second = create_op(domain, uid("wf-")), create_op(domain, uid("wf-"))
        assert await store.commit(sid, rng, [first, second]) == [None, None]

        def failing_close(op: CreateWorkflow) -> UpdateWorkflow:
            s = op.snapshot
            bad = create_op(domain, s.workflow_id, mode=CreateMode.CONTINUE_AS_NEW, previous_run_id=uid())
            timers = [timer_task(domain, s.workflow_id, s.run_id, 1_000, 31)]
            return update_op(op, close=CloseStatus.CONTINUED_AS_NEW, new_run=bad, timer_tasks=timers)

        a = create_op(domain, uid("wf-"), transfer=[transfer_task(domain, "a", "a", 21)])
        c = create_op(domain, uid("wf-"), transfer=[transfer_task(domain, "c", "c", 23)])
        d = create_op(domain, uid("wf-"), transfer=[transfer_task(domain, "d", "d", 24)])
        results = await asyncio.gather(
            store.commit(sid, rng, [a]),
            store.commit(sid, rng, [failing_close(first)]),
            store.commit(sid, rng, [c, failing_close(second), d]),
        )
        assert results[0] == [None]
        assert isinstance(results[1][0], ConditionFailed | AlreadyExists)
        assert results[2][0] is None and results[2][2] is None
        assert isinstance(results[2][1], ConditionFailed | AlreadyExists)
        for op in (a, c, d):
            await store.get_execution(sid, domain, op.snapshot.workflow_id, op.snapshot.run_id)
        for op in (first, second):
            s = op.snapshot
            got = await store.get_execution(sid, domain, s.workflow_id, s.run_id)
            assert (got.next_event_id, got.state) == (3, WorkflowState.RUNNING)
            assert (await store.get_current_execution(sid, domain, s.workflow_id)).run_id == s.run_id
            assert await history_of(store, sid, domain, s.workflow_id, s.run_id) == [(1, 2)]
        assert [t.task_id for t in await store.get_transfer_tasks(sid, 0, 1 << 62, 10)] == [21, 23, 24]
        assert await store.get_timer_tasks(sid, 0, 0, 1 << 62, 10) == []

    async def test_ops_in_one_call_see_each_other(self, store: Store) -> None:
        sid, rng = await owned_shard(store)
        domain, wf = uid(), uid("wf-")
        first = create_op(domain, wf)
        dup = create_op(domain, wf)
        then = update_op(first)
        results = await store.commit(sid, rng, [first, dup, then])
        assert results[0] is None and isinstance(results[1], AlreadyExists) and results[2] is None
        assert (await store.get_execution(sid, domain, wf, first.snapshot.run_id)).next_event_id == 5

    async def test_concurrent_commits_of_many_shards(self, store: Store) -> None:
        shards = [await owned_shard(store) for _ in range(3)]
        domain = uid()
        ops = [(sid, rng, create_op(domain, uid("wf-"))) for sid, rng in shards for _ in range(5)]
        stale_sid, stale_rng = shards[0]
        results = await asyncio.gather(
            *(store.commit(sid, rng, [op]) for sid, rng, op in ops),
            store.commit(stale_sid, stale_rng - 1, [create_op(domain, uid("wf-"))]),
            return_exceptions=True,
        )
        assert all(r == [None] for r in results[:-1]), results
        assert isinstance(results[-1], ShardOwnershipLost)
        for sid, _, op in ops:
            await store.get_execution(sid, domain, op.snapshot.workflow_id, op.snapshot.run_id)
