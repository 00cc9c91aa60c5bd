"""Conformance cases: history batches and paging, transfer and timer queues."""

from __future__ import annotations

from cadence_fast.persistence.errors import (
    AlreadyExists,
)
from cadence_fast.persistence.store import Store
from cadence_fast.persistence.testing.checks import history_of
from cadence_fast.persistence.testing.factories import (
    batch,
    create_op,
    owned_shard,
    timer_task,
    transfer_task,
    uid,
    update_op,
)

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
        everything = await history_of(store, sid, domain, wf, run)
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
        assert await history_of(store, sid, uid(), "nope", uid()) == []


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
