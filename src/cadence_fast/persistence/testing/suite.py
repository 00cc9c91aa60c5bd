"""The conformance kit's tests: DESIGN §6 and `Store`'s docstrings, executable.

Import every class into an adapter's test module and define a `store_url` fixture
(see `plugin.py`). Tests use unique ids (domains, workflow ids, shard ids, task
lists), so they also pass on a database shared by the whole run.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from cadence_fast.persistence.errors import (
    AlreadyExists,
    ConditionFailed,
    NotFound,
    ShardOwnershipLost,
    StoreError,
)
from cadence_fast.persistence.records import (
    CloseStatus,
    CreateMode,
    DomainRecord,
    MapKind,
    ShardRecord,
    TaskListRecord,
    TaskListTask,
    TaskListType,
    WorkflowState,
)
from cadence_fast.persistence.registry import create_store
from cadence_fast.persistence.store import Store
from cadence_fast.persistence.testing.factories import (
    batch,
    create_op,
    new_shard_id,
    owned_shard,
    timer_task,
    transfer_task,
    uid,
    update_op,
    visibility,
)
from cadence_fast.persistence.visibility_query import (
    SYSTEM_ATTRIBUTES,
    Attr,
    Compare,
    IsNull,
    OrderBy,
    VisibilityQuery,
)

__all__ = [
    "TestSchema",
    "TestDomains",
    "TestShards",
    "TestCreateWorkflow",
    "TestUpdateWorkflow",
    "TestGroupCommit",
    "TestHistory",
    "TestQueues",
    "TestTaskLists",
    "TestVisibility",
    "TestLimits",
]

MB = 1024 * 1024


def _needs_shared_database(store_url: str) -> None:
    if ":memory:" in store_url:
        pytest.skip("an in-memory store is private to its instance: no second instance sees it")


def _attr(name: str) -> Attr:
    return Attr(name, SYSTEM_ATTRIBUTES[name][0])


async def _history(
    store: Store, shard_id: int, domain_id: str, workflow_id: str, run_id: str
) -> list[tuple[int, int]]:
    batches, token = await store.read_history(shard_id, domain_id, workflow_id, run_id, 1, 1 << 62, 0, None)
    assert token is None
    return [(b.first_event_id, b.last_event_id) for b in batches]


async def _absent(store: Store, shard_id: int, domain_id: str, workflow_id: str, run_id: str) -> None:
    """Nothing of the run is visible: no row, no history."""
    with pytest.raises(NotFound):
        await store.get_execution(shard_id, domain_id, workflow_id, run_id)
    assert await _history(store, shard_id, domain_id, workflow_id, run_id) == []


# --- schema ------------------------------------------------------------------------------


class TestSchema:
    async def test_version_recorded(self, store: Store) -> None:
        assert await store.schema_version() == store.schema_version_expected

    async def test_setup_is_idempotent(self, store: Store) -> None:
        assert await store.setup_schema() == store.schema_version_expected
        assert await store.schema_version() == store.schema_version_expected

    async def test_unopened_store_reports_and_sets_up(self, store: Store, store_url: str) -> None:
        """`cadence-fast schema version|setup` call these on a store that is not open."""
        _needs_shared_database(store_url)
        unopened = create_store(store_url)
        assert await unopened.schema_version() == store.schema_version_expected
        assert await unopened.setup_schema() == store.schema_version_expected


# --- domains -----------------------------------------------------------------------------


def _domain(name: str | None = None, **kw: object) -> DomainRecord:
    fields: dict[str, object] = {
        "domain_id": uid(),
        "name": name or uid("kit-domain-"),
        "status": 0,
        "data": b"d1",
    }
    fields.update(kw)
    return DomainRecord(**fields)  # type: ignore[arg-type]


class TestDomains:
    async def test_create_then_get_by_id_and_name(self, store: Store) -> None:
        d = _domain(data=b"\x00binary\xffdata")
        version = await store.create_domain(d)
        assert version > 0 and d.notification_version == version
        for got in (await store.get_domain(domain_id=d.domain_id), await store.get_domain(name=d.name)):
            assert (got.domain_id, got.name, got.status, got.data) == (d.domain_id, d.name, 0, d.data)
            assert got.notification_version == version

    async def test_duplicate_name_or_id(self, store: Store) -> None:
        d = _domain()
        await store.create_domain(d)
        version = await store.get_metadata_version()
        with pytest.raises(AlreadyExists):
            await store.create_domain(_domain(d.name))
        with pytest.raises(AlreadyExists):
            await store.create_domain(_domain(domain_id=d.domain_id))
        assert (await store.get_domain(name=d.name)).domain_id == d.domain_id
        assert await store.get_metadata_version() == version, "a failed create must not bump the version"

    async def test_get_missing(self, store: Store) -> None:
        with pytest.raises(NotFound):
            await store.get_domain(domain_id=uid())
        with pytest.raises(NotFound):
            await store.get_domain(name=uid("missing-"))

    async def test_update_replaces_status_and_data(self, store: Store) -> None:
        d = _domain()
        v1 = await store.create_domain(d)
        d.status, d.data = 1, b"d2"
        v2 = await store.update_domain(d)
        assert v2 > v1 and await store.get_metadata_version() == v2
        got = await store.get_domain(name=d.name)
        assert (got.status, got.data, got.notification_version) == (1, b"d2", v2)
        with pytest.raises(NotFound):
            await store.update_domain(_domain())

    async def test_delete(self, store: Store) -> None:
        d = _domain()
        v1 = await store.create_domain(d)
        await store.delete_domain(d.domain_id)
        assert await store.get_metadata_version() > v1
        with pytest.raises(NotFound):
            await store.get_domain(domain_id=d.domain_id)
        with pytest.raises(NotFound):
            await store.get_domain(name=d.name)
        with pytest.raises(NotFound):
            await store.delete_domain(d.domain_id)
        await store.create_domain(_domain(d.name))  # the name is free again

    async def test_list_pages_in_name_order(self, store: Store) -> None:
        prefix = uid("kit-list-")
        names = [f"{prefix}-{i}" for i in (3, 0, 4, 1, 2)]
        for n in names:
            await store.create_domain(_domain(n))
        seen: list[str] = []
        token: bytes | None = None
        pages = 0
        while True:
            page, token = await store.list_domains(2, token)
            assert len(page) <= 2
            seen.extend(d.name for d in page)
            pages += 1
            if token is None:
                break
            assert pages < 1000
        assert seen == sorted(seen), "domains come ordered by name"
        assert [n for n in seen if n.startswith(prefix)] == sorted(names)
        everything, token = await store.list_domains(0, None)
        assert token is None and [d.name for d in everything] == seen

    async def test_metadata_version_bumps_on_every_write(self, store: Store) -> None:
        d = _domain()
        v0 = await store.get_metadata_version()
        v1 = await store.create_domain(d)
        v2 = await store.update_domain(d)
        await store.delete_domain(d.domain_id)
        v3 = await store.get_metadata_version()
        assert v0 < v1 < v2 < v3


# --- shards ------------------------------------------------------------------------------


class TestShards:
    async def test_get_or_create(self, store: Store) -> None:
        sid = new_shard_id()
        shard = await store.get_or_create_shard(sid)
        assert (shard.shard_id, shard.range_id) == (sid, 0)
        again = await store.get_or_create_shard(sid)
        assert (again.shard_id, again.range_id) == (sid, 0)

    async def test_update_with_range_condition(self, store: Store) -> None:
        sid = new_shard_id()
        shard = await store.get_or_create_shard(sid)
        shard.range_id, shard.owner = 1, "host-a"
        shard.transfer_ack_level, shard.timer_ack_level, shard.data = 42, 1_700_000_000_000_000_000, b"extra"
        await store.update_shard(shard, 0)
        got = await store.get_or_create_shard(sid)
        assert (got.range_id, got.owner, got.transfer_ack_level, got.timer_ack_level, got.data) == (
            1,
            "host-a",
            42,
            1_700_000_000_000_000_000,
            b"extra",
        )
        stale = await store.get_or_create_shard(sid)
        stale.range_id, stale.owner = 7, "host-b"
        with pytest.raises(ShardOwnershipLost):
            await store.update_shard(stale, 0)
        assert (await store.get_or_create_shard(sid)).owner == "host-a"

    async def test_two_owners_fencing(self, store: Store) -> None:
        """A owns at r; B bumps to r+1; everything A writes after that fails and is invisible."""
        sid, range_a = await owned_shard(store, owner="host-a")
        domain = uid()
        before = create_op(domain, uid("wf-"))
        assert await store.commit(sid, range_a, [before]) == [None]

        b = await store.get_or_create_shard(sid)
        b.range_id, b.owner = range_a + 1, "host-b"
        await store.update_shard(b, range_a)

        late = create_op(domain, uid("wf-"), transfer=[], with_visibility=False)
        with pytest.raises(ShardOwnershipLost):
            await store.commit(sid, range_a, [late])
        with pytest.raises(ShardOwnershipLost):
            await store.commit(sid, range_a, [update_op(before)])
        s = late.snapshot
        await _absent(store, sid, domain, s.workflow_id, s.run_id)
        with pytest.raises(NotFound):
            await store.get_current_execution(sid, domain, s.workflow_id)
        got = await store.get_execution(sid, domain, before.snapshot.workflow_id, before.snapshot.run_id)
        assert got.next_event_id == before.snapshot.next_event_id, "A's stale update must not land"
        # A cannot take the shard back with its old range either.
        a = await store.get_or_create_shard(sid)
        a.range_id, a.owner = range_a + 1, "host-a"
        with pytest.raises(ShardOwnershipLost):
            await store.update_shard(a, range_a)
        # B, the owner now, writes fine.
        assert await store.commit(sid, range_a + 1, [update_op(before)]) == [None]

    async def test_update_of_unknown_shard(self, store: Store) -> None:
        with pytest.raises(ShardOwnershipLost):
            await store.update_shard(ShardRecord(new_shard_id(), 1, "host-a"), 0)

    async def test_two_hosts_on_one_database(self, store: Store, store_url: str) -> None:
        """Fencing and one-winner updates between two open stores (two server processes)."""
        _needs_shared_database(store_url)
        host_b = create_store(store_url)
        await host_b.open()
        try:
            sid, range_a = await owned_shard(store, owner="host-a")
            domain, wf = uid(), uid("wf-")
            op = create_op(domain, wf)
            assert await store.commit(sid, range_a, [op]) == [None]
            # Both hosts race one transition of the run: exactly one wins.
            results = await asyncio.gather(
                store.commit(sid, range_a, [update_op(op, info=b"by a")]),
                host_b.commit(sid, range_a, [update_op(op, info=b"by b")]),
            )
            assert sorted(r[0] is None for r in results) == [False, True], results
            loser = results[0][0] if results[0][0] is not None else results[1][0]
            assert isinstance(loser, ConditionFailed)
            # B takes the shard; A is fenced out and nothing A writes afterwards is visible.
            shard = await host_b.get_or_create_shard(sid)
            assert shard.range_id == range_a
            shard.range_id, shard.owner = range_a + 1, "host-b"
            await host_b.update_shard(shard, range_a)
            late = create_op(domain, uid("wf-"))
            with pytest.raises(ShardOwnershipLost):
                await store.commit(sid, range_a, [late, update_op(op, condition=5)])
            for reader in (store, host_b):
                await _absent(reader, sid, domain, late.snapshot.workflow_id, late.snapshot.run_id)
                assert (await reader.get_execution(sid, domain, wf, op.snapshot.run_id)).next_event_id == 5
            assert await host_b.commit(sid, range_a + 1, [update_op(op, condition=5)]) == [None]
            assert (await store.get_execution(sid, domain, wf, op.snapshot.run_id)).next_event_id == 7
        finally:
            await host_b.close()

    async def test_commit_on_unknown_shard(self, store: Store) -> None:
        op = create_op(uid(), uid("wf-"))
        with pytest.raises(ShardOwnershipLost):
            await store.commit(new_shard_id(), 1, [op])


# --- executions --------------------------------------------------------------------------


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
        assert await _history(store, sid, domain, wf, s.run_id) == [(1, 2)]
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
        await _absent(store, sid, domain, wf, second.snapshot.run_id)
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
            await _absent(store, sid, domain, op.snapshot.workflow_id, op.snapshot.run_id)
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
        await _absent(store, sid, domain, wf, op.snapshot.run_id)
        with pytest.raises(NotFound):
            await store.get_current_execution(sid, domain, wf)
        await store.delete_execution(sid, domain, wf, op.snapshot.run_id)  # idempotent

    async def test_delete_old_run_keeps_the_current_row(self, store: Store) -> None:
        sid, rng = await owned_shard(store)
        domain, wf = uid(), uid("wf-")
        first = create_op(domain, wf)
        await store.commit(sid, rng, [first])
        await store.commit(sid, rng, [update_op(first, close=CloseStatus.COMPLETED)])
        second = create_op(
            domain, wf, mode=CreateMode.WORKFLOW_ID_REUSE, previous_run_id=first.snapshot.run_id
        )
        await store.commit(sid, rng, [second])
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
        assert await _history(store, sid, domain, wf, run) == [(1, 2), (3, 5)]
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
        assert await _history(store, sid, domain, wf, run) == [(1, 2), (3, 4)]
        assert await store.get_transfer_tasks(sid, 0, 1 << 62, 10) == []
        assert await store.get_timer_tasks(sid, 0, 0, 1 << 62, 10) == []
        assert (await store.list_workflows(domain, VisibilityQuery(), 10, None))[0] == []
        assert (await store.get_current_execution(sid, domain, wf)).state == WorkflowState.RUNNING

    async def test_update_of_missing_run(self, store: Store) -> None:
        sid, rng = await owned_shard(store)
        ghost = create_op(uid(), uid("wf-"))
        [err] = await store.commit(sid, rng, [update_op(ghost, update_current=False)])
        assert isinstance(err, ConditionFailed)
        await _absent(store, sid, ghost.snapshot.domain_id, ghost.snapshot.workflow_id, ghost.snapshot.run_id)

    async def test_update_current_requires_this_run_to_be_current(self, store: Store) -> None:
        sid, rng = await owned_shard(store)
        domain, wf = uid(), uid("wf-")
        first = create_op(domain, wf)
        await store.commit(sid, rng, [first])
        await store.commit(sid, rng, [update_op(first, close=CloseStatus.COMPLETED)])
        second = create_op(
            domain, wf, mode=CreateMode.WORKFLOW_ID_REUSE, previous_run_id=first.snapshot.run_id
        )
        await store.commit(sid, rng, [second])
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
        await _absent(store, sid, domain, wf, bad_new_run.snapshot.run_id)
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
        assert await _history(store, sid, domain, wf, op.snapshot.run_id) == [(1, 2), (3, 4)]


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


# --- history -----------------------------------------------------------------------------


class TestHistory:
    async def _run_with_batches(self, store: Store) -> tuple[int, str, str, str]:
        sid, rng = await owned_shard(store)
        domain, wf = uid(), uid("wf-")
        op = create_op(domain, wf, history=[batch(1, 2)])
        await store.commit(sid, rng, [op])
        nxt = 3
        for size in (
            1,
            3,
            2,
            1,
            4,
            2,
            1,
            1,
            5,
        ):  # [3,3] [4,6] [7,8] [9,9] [10,13] [14,15] [16,16] [17,17] [18,22]
            await store.commit(sid, rng, [update_op(op, condition=nxt, events=size)])
            nxt += size
        return sid, domain, wf, op.snapshot.run_id

    async def test_pages_in_event_order(self, store: Store) -> None:
        sid, domain, wf, run = await self._run_with_batches(store)
        everything = await _history(store, sid, domain, wf, run)
        assert everything[0] == (1, 2) and everything[-1] == (18, 22)
        assert all(a[1] + 1 == b[0] for a, b in zip(everything, everything[1:], strict=False))
        pages: list[list[tuple[int, int]]] = []
        token: bytes | None = None
        while True:
            page, token = await store.read_history(sid, domain, wf, run, 1, 26, 3, token)
            pages.append([(b.first_event_id, b.last_event_id) for b in page])
            if token is None:
                break
            assert isinstance(token, bytes)
        assert [len(p) for p in pages[:-1]] == [3] * (len(pages) - 1)
        assert [b for p in pages for b in p] == everything

    async def test_event_range_returns_whole_batches(self, store: Store) -> None:
        sid, domain, wf, run = await self._run_with_batches(store)
        # [4,6] [7,8] [9,9] [10,13] overlap [5, 11)
        batches, token = await store.read_history(sid, domain, wf, run, 5, 11, 0, None)
        assert token is None
        assert [(b.first_event_id, b.last_event_id) for b in batches] == [(4, 6), (7, 8), (9, 9), (10, 13)]
        batches, token = await store.read_history(sid, domain, wf, run, 5, 11, 2, None)
        assert [(b.first_event_id, b.last_event_id) for b in batches] == [
            (4, 6),
            (7, 8),
        ] and token is not None
        batches, token = await store.read_history(sid, domain, wf, run, 5, 11, 2, token)
        assert [(b.first_event_id, b.last_event_id) for b in batches] == [(9, 9), (10, 13)]
        assert token is None or (await store.read_history(sid, domain, wf, run, 5, 11, 2, token))[0] == []
        batches, _ = await store.read_history(sid, domain, wf, run, 30, 40, 0, None)
        assert batches == []

    async def test_payload_bytes_round_trip(self, store: Store) -> None:
        sid, rng = await owned_shard(store)
        domain, wf = uid(), uid("wf-")
        payload = bytes(range(256)) * 3
        op = create_op(domain, wf, history=[batch(1, 2, payload)])
        await store.commit(sid, rng, [op])
        batches, _ = await store.read_history(sid, domain, wf, op.snapshot.run_id, 1, 3, 0, None)
        assert [b.data for b in batches] == [payload]

    async def test_missing_run_has_no_history(self, store: Store) -> None:
        sid, _ = await owned_shard(store)
        assert await _history(store, sid, uid(), "nope", uid()) == []


# --- queues ------------------------------------------------------------------------------


class TestQueues:
    async def test_transfer_tasks_by_id_range(self, store: Store) -> None:
        sid, rng = await owned_shard(store)
        domain, wf = uid(), uid("wf-")
        ids = [5, 1, 9, 3, 7, 2]
        op = create_op(domain, wf, transfer=[transfer_task(domain, wf, "r", i, task_type=i % 3) for i in ids])
        await store.commit(sid, rng, [op])
        got = await store.get_transfer_tasks(sid, 2, 7, 100)
        assert [t.task_id for t in got] == [3, 5, 7]
        t = got[0]
        assert (t.task_type, t.domain_id, t.workflow_id, t.run_id, t.data) == (
            0,
            domain,
            wf,
            "r",
            b"transfer 3",
        )
        assert [t.task_id for t in await store.get_transfer_tasks(sid, 0, 100, 2)] == [1, 2]
        await store.complete_transfer_task(sid, 5)
        await store.complete_transfer_task(sid, 5)  # idempotent
        assert [t.task_id for t in await store.get_transfer_tasks(sid, 0, 100, 100)] == [1, 2, 3, 7, 9]
        await store.complete_transfer_tasks(sid, 3)
        assert [t.task_id for t in await store.get_transfer_tasks(sid, 0, 100, 100)] == [7, 9]
        other, other_rng = await owned_shard(store)
        assert await store.get_transfer_tasks(other, 0, 100, 100) == []

    async def test_timer_tasks_by_time_then_id(self, store: Store) -> None:
        sid, rng = await owned_shard(store)
        domain, wf = uid(), uid("wf-")
        keys = [(300, 1), (100, 9), (200, 4), (100, 2), (200, 3), (400, 5)]
        await store.commit(
            sid, rng, [create_op(domain, wf, timers=[timer_task(domain, wf, "r", t, i) for t, i in keys])]
        )
        order = [(t.visibility_time, t.task_id) for t in await store.get_timer_tasks(sid, 0, 0, 1 << 62, 100)]
        assert order == sorted(keys)
        t = (await store.get_timer_tasks(sid, 0, 0, 1 << 62, 1))[0]
        assert (t.visibility_time, t.task_id, t.domain_id, t.workflow_id, t.data) == (
            100,
            2,
            domain,
            wf,
            b"timer 100/2",
        )
        # From (200, 4) inclusive to time 400 exclusive.
        got = await store.get_timer_tasks(sid, 200, 4, 400, 100)
        assert [(x.visibility_time, x.task_id) for x in got] == [(200, 4), (300, 1)]
        got = await store.get_timer_tasks(sid, 100, 3, 1 << 62, 2)
        assert [(x.visibility_time, x.task_id) for x in got] == [(100, 9), (200, 3)]
        await store.complete_timer_task(sid, 100, 9)
        await store.complete_timer_task(sid, 100, 9)  # idempotent
        await store.complete_timer_tasks(sid, 300)
        left = await store.get_timer_tasks(sid, 0, 0, 1 << 62, 100)
        assert [(x.visibility_time, x.task_id) for x in left] == [(300, 1), (400, 5)]

    async def test_tasks_of_a_failed_op_never_appear(self, store: Store) -> None:
        sid, rng = await owned_shard(store)
        domain, wf = uid(), uid("wf-")
        op = create_op(domain, wf)
        await store.commit(sid, rng, [op])
        dup = create_op(
            domain,
            wf,
            transfer=[transfer_task(domain, wf, "x", 1)],
            timers=[timer_task(domain, wf, "x", 1, 2)],
        )
        [err] = await store.commit(sid, rng, [dup])
        assert isinstance(err, AlreadyExists)
        assert await store.get_transfer_tasks(sid, 0, 100, 100) == []
        assert await store.get_timer_tasks(sid, 0, 0, 1 << 62, 100) == []


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
        open_q = VisibilityQuery(where=IsNull(_attr("CloseTime")))
        assert await store.count_workflows(domain, open_q) == 4
        closed_q = VisibilityQuery(where=IsNull(_attr("CloseTime"), negated=True))
        [got], _ = await store.list_workflows(domain, closed_q, 10, None)
        assert (got.run_id, got.close_time, got.close_status, got.history_length) == (
            closed.run_id,
            base + 100,
            CloseStatus.COMPLETED,
            11,
        )
        by_type = VisibilityQuery(where=Compare(_attr("WorkflowType"), "=", "T"))
        assert await store.count_workflows(domain, by_type) == 2
        oldest_first = VisibilityQuery(order_by=(OrderBy(_attr("StartTime"), descending=False),))
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
