"""Shard ownership, the outbox's ack levels, and the _core module compiled and from source."""

from __future__ import annotations

import asyncio
import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

import cadence_fast._core as core_pkg
from cadence_fast import errors
from cadence_fast.history.engine import shard_of
from tests.history.harness import Env, complete_workflow, schedule_activity


async def test_second_owner_fences_the_first(tmp_path: Path) -> None:
    first = await Env(tmp_path / "h.db").open()
    second = await Env(tmp_path / "h.db").open(register=False)
    try:
        # the second engine bumped every shard's range_id: the first one's writes are refused
        with pytest.raises(errors.AbortedError):
            await first.start("fenced")
        await first.close()
        # the first engine re-acquired the shard after losing it; the second recovers the same way,
        # and a client retries ABORTED
        for _ in range(5):
            try:
                wf, run_id = await second.start("fenced")
                break
            except errors.AbortedError:
                await asyncio.sleep(0.1)
        events = await second.history_events(wf)
        assert len(events) == 2
    finally:
        await second.close()
        await first.close()


async def test_ack_levels_persist_and_completed_tasks_are_deleted(tmp_path: Path) -> None:
    env = await Env(tmp_path / "h.db").open()
    try:
        wf, _ = await env.start()
        task = await env.poll_decision()
        assert task is not None
        await env.complete_decision(task.task_token, [schedule_activity("a")])
        act = await env.poll_activity()
        assert act is not None
        await env.history._checkpoint()
        shard = env.history.shard_for(wf)
        transfer = await env.store.get_transfer_tasks(shard.shard_id, 0, 1 << 62, 100)
        assert transfer == []  # decision and activity tasks were handed to matching
        record = await env.store.get_or_create_shard(shard.shard_id)
        assert record.transfer_ack_level >= shard.range_id << 20
        assert record.range_id == shard.range_id
    finally:
        await env.close()
    # a restart re-reads nothing already done and still works
    env = await Env(tmp_path / "h.db").open(register=False)
    try:
        wf2, _ = await env.start()
        task = await env.poll_decision()
        assert task is not None and task.workflow_execution.workflow_id == wf2
        await env.complete_decision(task.task_token, [complete_workflow()])
    finally:
        await env.close()


def test_shard_of_is_stable() -> None:
    assert shard_of("workflow-1", 4) == shard_of("workflow-1", 4)
    assert {shard_of(f"wf-{i}", 4) for i in range(100)} == {0, 1, 2, 3}


def _source_module() -> ModuleType:
    path = Path(core_pkg.__file__).parent / "mutable_state.py"
    spec = importlib.util.spec_from_file_location("_mutable_state_uncompiled", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("build", ["package", "source"])
def test_mutable_state_builds_behave_the_same(build: str) -> None:
    m = core_pkg.mutable_state if build == "package" else _source_module()  # type: ignore[attr-defined]
    ms = m.MutableState()
    ms.task_list = "tl"
    ms.task_timeout = 10 * m.NS
    mut = m.Mutation(1_000 * m.NS, 1)
    ms.schedule_decision(mut)
    ms.start_decision(mut, "w", "r")
    a = m.ActivityInfo()
    a.schedule_id, a.activity_id = 7, "act"
    ms.add_activity(mut, a)
    ms.add_async_event(mut, workflow_execution_signaled_event_attributes={"signal_name": "s"})
    assert [e.event_id for e in mut.events] == [1, 2] and len(ms.buffered) == 1
    ms.complete_decision(mut, "w")
    assert ms.flush_buffered(mut) == 1
    assert [e.event_id for e in mut.events] == [1, 2, 3, 4]
    upserts, deletes = ms.map_delta(mut)
    assert [u[:2] for u in upserts] == [(m.MAP_ACTIVITY, "7")]
    assert [d[0] for d in deletes] == [m.MAP_BUFFERED_EVENT]
    loaded = m.MutableState.load(ms.encode_info(), ms.encode_maps())
    assert loaded.encode_info() == ms.encode_info()
    assert loaded.activity_ids == {"act": 7} and loaded.last_processed_event == 2


async def test_exhausted_task_id_block_renews_the_range(tmp_path: Path) -> None:
    env = await Env(tmp_path / "h.db").open()
    try:
        shards = env.history.shards
        before = {s.shard_id: s.range_id for s in shards}
        for s in shards:
            s._max_task_id = s._next_task_id + 1  # an exhausted block: any start needs a renewal
        wfs = await asyncio.gather(*[env.start() for _ in range(12)])
        assert all(
            s.range_id > before[s.shard_id]
            for s in shards
            if any(env.history.shard_for(w) is s for w, _ in wfs)
        )
        for _ in wfs:
            task = await env.poll_decision()
            assert task is not None
            await env.complete_decision(task.task_token, [complete_workflow()])
        for wf, _ in wfs:
            close = await env.close_event(wf)
            assert close is not None and close.HasField("workflow_execution_completed_event_attributes")
    finally:
        await env.close()
