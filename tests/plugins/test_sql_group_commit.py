"""Group commit on the SQL servers: many ops of one shard in one transaction.

The adapters check every op's conditions from ONE batch of reads and write the passing
ops grouped by table; these cases pin what that must not change (Store.commit): each op
is checked against the ops before it in the call, a failing op leaves no trace, and a
row the database itself refuses costs only its own op.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from cadence_fast.persistence import create_store
from cadence_fast.persistence.errors import AlreadyExists, ConditionFailed
from cadence_fast.persistence.records import CloseStatus, CreateMode, MapKind, WorkflowState
from cadence_fast.persistence.store import Store
from cadence_fast.persistence.testing.factories import (
    batch,
    create_op,
    owned_shard,
    transfer_task,
    uid,
    update_op,
    visibility,
)
from cadence_fast.persistence.visibility_query import VisibilityQuery


def scenario(url: str, body: Callable[[Store, int, int], Awaitable[None]]) -> None:
    async def main() -> None:
        store = create_store(url)
        await store.open(create_schema=True)
        try:
            sid, rng = await owned_shard(store)
            await body(store, sid, rng)
        finally:
            await store.close()

    asyncio.run(main())


def test_ops_on_one_run_apply_in_call_order(server_db: tuple[str, str]) -> None:
    """Three transitions of one run in one call: each sees the previous one's maps and
    next_event_id, and a stale one in the middle fails alone."""

    async def body(store: Store, sid: int, rng: int) -> None:
        domain, wf = uid(), uid("wf-")
        create = create_op(domain, wf, maps={MapKind.ACTIVITY: {"5": b"a5"}})
        assert await store.commit(sid, rng, [create]) == [None]
        first = update_op(create, map_upserts=[(MapKind.ACTIVITY, "7", b"a7"), (MapKind.TIMER, "t", b"t1")])
        stale = update_op(create, map_deletes=[(MapKind.ACTIVITY, "7")])  # same condition as `first`
        second = update_op(
            create,
            condition=5,
            map_deletes=[(MapKind.ACTIVITY, "5"), (MapKind.ACTIVITY, "7")],
            map_upserts=[(MapKind.TIMER, "t", b"t2")],
            close=CloseStatus.COMPLETED,
        )
        results = await store.commit(sid, rng, [first, stale, second])
        assert results[0] is None and results[2] is None, results
        assert isinstance(results[1], ConditionFailed)
        run = await store.get_execution(sid, domain, wf, create.snapshot.run_id)
        assert run.next_event_id == 7 and run.info == b"info@7"
        assert run.maps == {MapKind.TIMER: {"t": b"t2"}}
        current = await store.get_current_execution(sid, domain, wf)
        assert (current.state, current.close_status) == (WorkflowState.COMPLETED, CloseStatus.COMPLETED)
        history, _ = await store.read_history(sid, domain, wf, create.snapshot.run_id, 1, 100, 0, None)
        assert [(b.first_event_id, b.last_event_id) for b in history] == [(1, 2), (3, 4), (5, 6)]

    scenario(server_db[1], body)


def test_create_close_reuse_and_continue_in_one_call(server_db: tuple[str, str]) -> None:
    """A run created, closed and replaced (id reuse), another continued-as-new, in one call:
    the current rows swing as if the ops had been committed one by one."""

    async def body(store: Store, sid: int, rng: int) -> None:
        domain, wf, wf2 = uid(), uid("wf-"), uid("wf-")
        first = create_op(domain, wf, with_visibility=True)
        close = update_op(first, close=CloseStatus.FAILED)
        reuse = create_op(domain, wf, mode=CreateMode.WORKFLOW_ID_REUSE, previous_run_id=first.snapshot.run_id)
        duplicate = create_op(domain, wf)  # BRAND_NEW while `reuse` is current
        other = create_op(domain, wf2)
        new_run = create_op(domain, wf2, mode=CreateMode.CONTINUE_AS_NEW, previous_run_id=other.snapshot.run_id)
        continued = update_op(
            other,
            close=CloseStatus.CONTINUED_AS_NEW,
            new_run=new_run,
            visibility=visibility(domain, wf2, other.snapshot.run_id, close_status=CloseStatus.CONTINUED_AS_NEW),
        )
        then = update_op(new_run)
        results = await store.commit(sid, rng, [first, close, reuse, duplicate, other, continued, then])
        assert results[:3] == [None] * 3 and results[4:] == [None] * 3, results
        assert isinstance(results[3], AlreadyExists) and results[3].current is not None
        assert results[3].current.run_id == reuse.snapshot.run_id
        assert (await store.get_current_execution(sid, domain, wf)).run_id == reuse.snapshot.run_id
        closed = await store.get_execution(sid, domain, wf, first.snapshot.run_id)
        assert (closed.state, closed.close_status) == (WorkflowState.COMPLETED, CloseStatus.FAILED)
        current2 = await store.get_current_execution(sid, domain, wf2)
        assert (current2.run_id, current2.state) == (new_run.snapshot.run_id, WorkflowState.RUNNING)
        assert (await store.get_execution(sid, domain, wf2, new_run.snapshot.run_id)).next_event_id == 5
        # first's row and the continued run's row (written by the update that closed it)
        assert await store.count_workflows(domain, VisibilityQuery()) == 2

    scenario(server_db[1], body)


def test_row_refused_by_the_database_fails_only_its_op(server_db: tuple[str, str]) -> None:
    """A duplicate transfer task id is refused by the database itself (no condition reads
    it): that op gets AlreadyExists and leaves no trace, the others (and a condition
    failure's error) are as if it were not in the call; the store keeps working."""

    async def body(store: Store, sid: int, rng: int) -> None:
        domain = uid()
        existing = create_op(domain, uid("wf-"), transfer=[transfer_task(domain, "x", "x", 100)])
        assert await store.commit(sid, rng, [existing]) == [None]
        a = create_op(domain, uid("wf-"), transfer=[transfer_task(domain, "a", "a", 101)])
        clash = update_op(existing, transfer_tasks=[transfer_task(domain, "b", "b", 100)])
        stale = update_op(existing, condition=42)
        c = create_op(domain, uid("wf-"), history=[batch(1, 2, b"c")], transfer=[transfer_task(domain, "c", "c", 102)])
        results = await store.commit(sid, rng, [a, clash, stale, c])
        assert results[0] is None and results[3] is None, results
        assert isinstance(results[1], AlreadyExists), results
        assert isinstance(results[2], ConditionFailed), results
        ids = [t.task_id for t in await store.get_transfer_tasks(sid, 0, 1 << 62, 10)]
        assert ids == [100, 101, 102]
        assert (await store.get_execution(sid, domain, existing.snapshot.workflow_id, existing.snapshot.run_id)).info == (
            b"info-v1"
        )
        for op in (a, c):
            await store.get_execution(sid, domain, op.snapshot.workflow_id, op.snapshot.run_id)
        # Alone, the same op gets the same error; the connection serves the next call.
        assert isinstance((await store.commit(sid, rng, [clash]))[0], AlreadyExists)
        assert await store.commit(sid, rng, [update_op(existing)]) == [None]

    scenario(server_db[1], body)


def test_large_group(server_db: tuple[str, str]) -> None:
    """More ops than one condition read holds keys for: every op is checked and written."""

    async def body(store: Store, sid: int, rng: int) -> None:
        domain = uid()
        creates = [create_op(domain, f"wf-{i}-{uid()}") for i in range(1100)]
        assert await store.commit(sid, rng, creates) == [None] * len(creates)
        updates = [update_op(c) for c in creates]
        updates[700] = update_op(creates[700], condition=1)
        results = await store.commit(sid, rng, updates)
        assert isinstance(results[700], ConditionFailed)
        assert results[:700] == [None] * 700 and results[701:] == [None] * 399
        for i in (0, 699, 700, 1099):
            c = creates[i].snapshot
            run = await store.get_execution(sid, domain, c.workflow_id, c.run_id)
            assert run.next_event_id == (3 if i == 700 else 5)

    scenario(server_db[1], body)


def test_group_larger_than_a_packet(server_db: tuple[str, str]) -> None:
    """18 MB of rows in one group (over MariaDB's default 16 MB max_allowed_packet): the
    drivers cut their statements and batches, every byte comes back."""

    async def body(store: Store, sid: int, rng: int) -> None:
        domain = uid()
        creates = [create_op(domain, uid("wf-")) for _ in range(6)]
        assert await store.commit(sid, rng, creates) == [None] * 6
        history = [bytes([i]) * (2 << 20) for i in range(6)]
        updates = [
            update_op(c, history=[batch(3, 4, history[i])], map_upserts=[(MapKind.ACTIVITY, "big", history[i][: 1 << 20])])
            for i, c in enumerate(creates)
        ]
        assert await store.commit(sid, rng, updates) == [None] * 6
        for i, c in enumerate(creates):
            s = c.snapshot
            run = await store.get_execution(sid, domain, s.workflow_id, s.run_id)
            assert run.maps[MapKind.ACTIVITY]["big"] == history[i][: 1 << 20]
            batches, _ = await store.read_history(sid, domain, s.workflow_id, s.run_id, 3, 5, 0, None)
            assert [b.data for b in batches] == [history[i]]

    scenario(server_db[1], body)
