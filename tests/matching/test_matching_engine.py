"""MatchingEngine against a real SQLite store: sync match, long polls, the persisted backlog,
lease fencing, expiry, queries, on_done and shutdown."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from matching_helpers import DOMAIN, DoneCounter, make_task, new_task_list, open_store, running_engine

from cadence_fast import errors
from cadence_fast.matching.engine import MatchingEngine
from cadence_fast.persistence.records import TaskListType

DECISION = TaskListType.DECISION
ACTIVITY = TaskListType.ACTIVITY


async def _waiting_poll(engine: MatchingEngine, name: str, wait: float = 10.0, **kw: object) -> asyncio.Task:
    """Start a poll and let it register as a waiting poller."""
    poll = asyncio.create_task(engine.poll(DOMAIN, name, DECISION, "worker-1", wait, **kw))  # type: ignore[arg-type]
    for _ in range(50):
        await asyncio.sleep(0.01)
        mgr = engine.loaded(DOMAIN, name, DECISION)
        if mgr is not None and mgr.dispatcher.poller_count() > 0:
            return poll
    raise AssertionError("poll never started waiting")


async def _backlog_rows(store, name: str, task_type: int = DECISION) -> list[int]:
    rows = await store.get_tasks(DOMAIN, name, task_type, 0, 1 << 62, 0)
    return [r.task_id for r in rows]


async def test_sync_match_hands_task_to_waiting_poller_without_store_write(tmp_path: Path) -> None:
    name = new_task_list()
    done = DoneCounter()
    async with open_store(tmp_path / "m.db") as store, running_engine(store) as engine:
        poll = await _waiting_poll(engine, name)
        await engine.add_task(make_task(name, 5, on_done=done))
        task = await asyncio.wait_for(poll, 5)
        assert task is not None and task.scheduled_event_id == 5 and task.workflow_id == "wf"
        assert await _backlog_rows(store, name) == []
        # on_done of a sync-matched task waits for the poll path's ack.
        assert done.calls == 0
        engine.ack(task)
        assert done.calls == 1
        engine.ack(task)  # a second ack does not complete the transfer task again
        assert done.calls == 1


async def test_poll_times_out_with_none_before_the_deadline(tmp_path: Path) -> None:
    async with open_store(tmp_path / "m.db") as store, running_engine(store) as engine:
        started = time.monotonic()
        assert await engine.poll(DOMAIN, new_task_list(), ACTIVITY, "w", 0.5) is None
        elapsed = time.monotonic() - started
        assert 0.3 < elapsed < 0.5
        assert await engine.poll(DOMAIN, new_task_list(), ACTIVITY, "w", 0) is None


async def test_backlog_persisted_and_read_back_in_order_after_restart(tmp_path: Path) -> None:
    name = new_task_list()
    done = [DoneCounter() for _ in range(5)]
    async with open_store(tmp_path / "m.db") as store:
        async with running_engine(store) as engine:
            for i in range(5):
                await engine.add_task(make_task(name, 10 + i, on_done=done[i]))
            # Persisted: the transfer tasks are no longer needed.
            assert [d.calls for d in done] == [1] * 5
            assert len(await _backlog_rows(store, name)) == 5
        async with running_engine(store) as engine:
            got = [await engine.poll(DOMAIN, name, DECISION, "w", 2) for _ in range(5)]
            assert [t.scheduled_event_id for t in got if t] == [10, 11, 12, 13, 14]
            assert await engine.poll(DOMAIN, name, DECISION, "w", 0.2) is None
            for t in got:
                engine.ack(t)  # type: ignore[arg-type]
            assert [d.calls for d in done] == [1] * 5  # on_done fired once, at persist time
        # stop() flushed the ack level: the rows are gone and nothing is re-delivered.
        assert await _backlog_rows(store, name) == []
        async with running_engine(store) as engine:
            assert await engine.poll(DOMAIN, name, DECISION, "w", 0.2) is None


async def test_unacked_backlog_tasks_are_redelivered_after_restart(tmp_path: Path) -> None:
    name = new_task_list()
    async with open_store(tmp_path / "m.db") as store:
        async with running_engine(store) as engine:
            for i in range(3):
                await engine.add_task(make_task(name, i + 1))
            first = await engine.poll(DOMAIN, name, DECISION, "w", 1)
            second = await engine.poll(DOMAIN, name, DECISION, "w", 1)
            assert first and second
            engine.ack(second)  # the first stays un-acked: the ack level cannot pass it
        # Everything above the persisted ack level comes back: the un-acked first task, and
        # also the second (acked out of order, above the level; history drops it as stale).
        async with running_engine(store) as engine:
            got = [await engine.poll(DOMAIN, name, DECISION, "w", 1) for _ in range(3)]
            assert [t.scheduled_event_id for t in got if t] == [1, 2, 3]
            for t in got:
                engine.ack(t)  # type: ignore[arg-type]
        assert await _backlog_rows(store, name) == []


async def test_many_tasks_flow_through_the_reader_in_order(tmp_path: Path) -> None:
    """More tasks than the in-memory buffer holds: the reader pages them in, in order."""
    name = new_task_list()
    count = 1500
    async with open_store(tmp_path / "m.db") as store:
        async with running_engine(store) as engine:
            await asyncio.gather(*(engine.add_task(make_task(name, i)) for i in range(count)))
        async with running_engine(store, ack_flush_interval=0.05) as engine:
            seen = []
            for _ in range(count):
                t = await engine.poll(DOMAIN, name, DECISION, "w", 2)
                assert t is not None
                seen.append(t.scheduled_event_id)
                engine.ack(t)
            assert seen == list(range(count))
            await asyncio.sleep(0.2)
            assert await _backlog_rows(store, name) == []


async def test_cancelled_poll_gives_the_task_back(tmp_path: Path) -> None:
    name = new_task_list()
    done = DoneCounter()
    async with open_store(tmp_path / "m.db") as store, running_engine(store) as engine:
        poll = await _waiting_poll(engine, name)
        # add_task hands the task to the waiting poll; cancel the poll before it resumes.
        await engine.add_task(make_task(name, 7, on_done=done))
        assert not poll.done()
        poll.cancel()
        with pytest.raises(asyncio.CancelledError):
            await poll
        await asyncio.sleep(0.05)
        again = await engine.poll(DOMAIN, name, DECISION, "w2", 2)
        assert again is not None and again.scheduled_event_id == 7
        # Nobody waited when it came back, so it was persisted: on_done fired then.
        assert done.calls == 1
        engine.ack(again)
        assert done.calls == 1


async def test_cancelled_poll_task_goes_to_a_waiting_poller(tmp_path: Path) -> None:
    name = new_task_list()
    done = DoneCounter()
    async with open_store(tmp_path / "m.db") as store, running_engine(store) as engine:
        first = await _waiting_poll(engine, name)
        second = asyncio.create_task(engine.poll(DOMAIN, name, DECISION, "worker-2", 10))
        await asyncio.sleep(0.05)
        await engine.add_task(make_task(name, 8, on_done=done))
        first.cancel()
        task = await asyncio.wait_for(second, 5)
        assert task is not None and task.scheduled_event_id == 8
        assert await _backlog_rows(store, name) == []  # still a sync match: no write
        assert done.calls == 0
        engine.ack(task)
        assert done.calls == 1


async def test_requeue_redelivers(tmp_path: Path) -> None:
    name = new_task_list()
    async with open_store(tmp_path / "m.db") as store, running_engine(store) as engine:
        # A backlog task re-queued goes to the front of the buffer.
        await engine.add_task(make_task(name, 1))
        await engine.add_task(make_task(name, 2))
        t1 = await engine.poll(DOMAIN, name, DECISION, "w", 1)
        assert t1 is not None and t1.scheduled_event_id == 1
        engine.requeue(t1)
        again = await engine.poll(DOMAIN, name, DECISION, "w", 1)
        assert again is not None and again.scheduled_event_id == 1
        # A sync-matched task re-queued with no poller waiting is persisted, then delivered.
        other = new_task_list()
        done = DoneCounter()
        poll = asyncio.create_task(engine.poll(DOMAIN, other, DECISION, "w", 5))
        await asyncio.sleep(0.05)
        await engine.add_task(make_task(other, 3, on_done=done))
        t3 = await poll
        assert t3 is not None and t3.task_id == 0
        engine.requeue(t3)
        await asyncio.sleep(0.1)
        assert len(await _backlog_rows(store, other)) == 1
        assert done.calls == 1  # persisted: the transfer task is done
        redelivered = await engine.poll(DOMAIN, other, DECISION, "w", 2)
        assert redelivered is not None and redelivered.scheduled_event_id == 3
        engine.ack(redelivered)
        assert done.calls == 1


async def test_lease_fencing_between_two_engines(tmp_path: Path) -> None:
    name = new_task_list()
    async with open_store(tmp_path / "m.db") as store:
        async with running_engine(store) as older, running_engine(store) as newer:
            await older.add_task(make_task(name, 1))
            assert older.loaded(DOMAIN, name, DECISION).backlog.range_id == 1  # type: ignore[union-attr]
            # The newer owner leases the list: range 2 fences the older one.
            assert await newer.poll(DOMAIN, name, DECISION, "w", 1) is not None
            mgr_old = older.loaded(DOMAIN, name, DECISION)
            # The older engine's write is refused (ConditionFailed); it reloads (range 3) and retries.
            await older.add_task(make_task(name, 2))
            reloaded = older.loaded(DOMAIN, name, DECISION)
            assert reloaded is not mgr_old and mgr_old.lost  # type: ignore[union-attr]
            assert reloaded.backlog.range_id == 3  # type: ignore[union-attr]
            rows = await store.get_tasks(DOMAIN, name, DECISION, 0, 1 << 62, 0)
            # Task 2 sits in the range-3 id block.
            assert rows[-1].task_id > 2 * 100_000
            # Now the newer engine is the fenced one: its next write reloads it in turn.
            await newer.add_task(make_task(name, 3))
            assert newer.loaded(DOMAIN, name, DECISION).backlog.range_id == 4  # type: ignore[union-attr]


async def test_waiting_poll_moves_to_the_reloaded_list(tmp_path: Path) -> None:
    name = new_task_list()
    async with open_store(tmp_path / "m.db") as store:
        async with running_engine(store, ack_flush_interval=0.05) as older, running_engine(store) as newer:
            poll = await _waiting_poll(older, name)
            await newer.add_task(make_task(name, 1))  # leases range 2; delivered to newer's buffer
            t = await newer.poll(DOMAIN, name, DECISION, "w", 1)
            assert t is not None
            newer.ack(t)
            await newer.stop()  # flushes the ack level under range 2
            # The older engine notices on its own ack flush? It has nothing to flush; a write does.
            await older.add_task(make_task(name, 2))
            got = await asyncio.wait_for(poll, 5)
            assert got is not None and got.scheduled_event_id == 2


async def test_expired_tasks_are_dropped(tmp_path: Path) -> None:
    name = new_task_list()
    done_past = DoneCounter()
    done_soon = DoneCounter()
    async with open_store(tmp_path / "m.db") as store:
        async with running_engine(store) as engine:
            await engine.add_task(make_task(name, 1, expiry_in=-1, on_done=done_past))
            assert done_past.calls == 1  # dropped at once: the transfer task is done
            assert await _backlog_rows(store, name) == []
            await engine.add_task(make_task(name, 2, expiry_in=0.2, on_done=done_soon))
            await engine.add_task(make_task(name, 3))
            assert done_soon.calls == 1
            await asyncio.sleep(0.3)
            got = await engine.poll(DOMAIN, name, DECISION, "w", 1)
            assert got is not None and got.scheduled_event_id == 3
            engine.ack(got)
        # After a restart the expired row is skipped as well (and acked away).
        async with running_engine(store) as engine:
            assert await engine.poll(DOMAIN, name, DECISION, "w", 0.2) is None
        assert await _backlog_rows(store, name) == []


async def test_offer_query_with_and_without_poller(tmp_path: Path) -> None:
    name = new_task_list()
    async with open_store(tmp_path / "m.db") as store, running_engine(store) as engine:
        query = make_task(name, 0, query={"type": "q"})
        started = time.monotonic()
        assert await engine.offer_query(query, 0.2) is False
        assert time.monotonic() - started < 1
        # A poll after the offer timed out does not see it.
        assert await engine.poll(DOMAIN, name, DECISION, "w", 0.1) is None
        # With a poller waiting: taken at once.
        poll = await _waiting_poll(engine, name)
        assert await engine.offer_query(make_task(name, 0, query="q1"), 1) is True
        got = await poll
        assert got is not None and got.query == "q1"
        engine.ack(got)
        # Queries are never persisted, and a poller arriving during the offer takes it,
        # ahead of the backlog.
        await engine.add_task(make_task(name, 9))
        offer = asyncio.create_task(engine.offer_query(make_task(name, 0, query="q2"), 5))
        await asyncio.sleep(0.05)
        first = await engine.poll(DOMAIN, name, DECISION, "w", 1)
        assert first is not None and first.query == "q2"
        assert await offer is True
        second = await engine.poll(DOMAIN, name, DECISION, "w", 1)
        assert second is not None and second.scheduled_event_id == 9
        assert len(await _backlog_rows(store, name)) == 1


async def test_stop_wakes_every_waiting_poll(tmp_path: Path) -> None:
    async with open_store(tmp_path / "m.db") as store:
        engine = MatchingEngine(store)
        await engine.start()
        names = [new_task_list() for _ in range(3)]
        polls = [asyncio.create_task(engine.poll(DOMAIN, n, DECISION, "w", 60)) for n in names]
        polls.append(asyncio.create_task(engine.poll(DOMAIN, names[0], DECISION, "w2", 60)))
        await asyncio.sleep(0.1)
        started = time.monotonic()
        await engine.stop()
        results = await asyncio.wait_for(asyncio.gather(*polls), 2)
        assert results == [None] * 4
        assert time.monotonic() - started < 2
        # After stop: polls return None at once; adds are refused (the outbox keeps them).
        assert await engine.poll(DOMAIN, names[0], DECISION, "w", 60) is None
        with pytest.raises(errors.UnavailableError):
            await engine.add_task(make_task(names[0], 1))


async def test_sticky_list_without_poller_is_unavailable(tmp_path: Path) -> None:
    name = new_task_list()
    async with open_store(tmp_path / "m.db") as store, running_engine(store) as engine:
        with pytest.raises(errors.StickyWorkerUnavailableError):
            await engine.add_task(make_task(name, 1, kind=2))
        # A worker polled it recently: the task is accepted into the backlog.
        assert await engine.poll(DOMAIN, name, DECISION, "w", 0.1, kind=2) is None
        await engine.add_task(make_task(name, 2, kind=2))
        got = await engine.poll(DOMAIN, name, DECISION, "w", 1, kind=2)
        assert got is not None and got.scheduled_event_id == 2 and got.kind == 2


async def test_describe_and_list_task_lists(tmp_path: Path) -> None:
    name = new_task_list()
    async with open_store(tmp_path / "m.db") as store, running_engine(store) as engine:
        for i in range(3):
            await engine.add_task(make_task(name, i, task_type=ACTIVITY))
        assert await engine.poll(DOMAIN, name, DECISION, "decider@host", 0.05) is None
        got = await engine.poll(DOMAIN, name, ACTIVITY, "actor@host", 1, rate_per_second=50.0)
        assert got is not None
        assert engine.backlog_hint(DOMAIN, name, ACTIVITY) == 2  # two still waiting for a poll
        assert engine.backlog_hint(DOMAIN, "not-loaded", ACTIVITY) == 0
        desc = await engine.describe(DOMAIN, name, ACTIVITY)
        assert [p.identity for p in desc.pollers] == ["actor@host"]
        assert desc.pollers[0].rate_per_second == 50.0
        assert abs(desc.pollers[0].last_access_time - time.time_ns()) < 10 * 1e9
        assert desc.backlog_count == 3  # not acked yet
        assert desc.range_id == 1 and desc.task_id_block == (1, 100_000)
        engine.ack(got)
        desc = await engine.describe(DOMAIN, name, ACTIVITY)
        assert desc.backlog_count == 2 and desc.ack_level == 1
        # Sticky lists are a worker's private lists: not listed.
        assert await engine.poll(DOMAIN, new_task_list(), DECISION, "decider@host", 0.05, kind=2) is None
        lists = await engine.list_task_lists(DOMAIN)
        assert {(d.name, d.task_type) for d in lists} == {(name, DECISION), (name, ACTIVITY)}
        decision = next(d for d in lists if d.task_type == DECISION)
        assert [p.identity for p in decision.pollers] == ["decider@host"]
        assert await engine.list_task_lists("another-domain") == []


async def test_add_task_waits_briefly_for_a_returning_poller(tmp_path: Path) -> None:
    name = new_task_list()
    done = DoneCounter()
    async with open_store(tmp_path / "m.db") as store, running_engine(store, sync_match_wait=5.0) as engine:
        await engine.poll(DOMAIN, name, DECISION, "w", 0)  # load the list
        adding = asyncio.create_task(engine.add_task(make_task(name, 1, on_done=done)))
        await asyncio.sleep(0.1)
        assert not adding.done()  # no poller yet: still waiting, nothing written
        got = await engine.poll(DOMAIN, name, DECISION, "w", 1)
        await asyncio.wait_for(adding, 1)
        assert got is not None and got.scheduled_event_id == 1 and got.task_id == 0
        assert await _backlog_rows(store, name) == []
        assert done.calls == 0
        engine.ack(got)
        assert done.calls == 1
    async with open_store(tmp_path / "m2.db") as store, running_engine(store, sync_match_wait=0.05) as engine:
        await engine.add_task(make_task(name, 2, on_done=done))  # nobody came: written
        assert len(await _backlog_rows(store, name)) == 1
        assert done.calls == 2


async def test_stop_while_add_task_waits_for_a_poller(tmp_path: Path) -> None:
    name = new_task_list()
    done = DoneCounter()
    async with open_store(tmp_path / "m.db") as store:
        engine = MatchingEngine(store, sync_match_wait=30.0)
        await engine.start()
        await engine.poll(DOMAIN, name, DECISION, "w", 0)
        adding = asyncio.create_task(engine.add_task(make_task(name, 1, on_done=done)))
        await asyncio.sleep(0.05)
        await engine.stop()
        # Refused, not lost: the caller's outbox still holds the task (on_done never ran).
        with pytest.raises(errors.UnavailableError):
            await asyncio.wait_for(adding, 5)
        assert done.calls == 0
