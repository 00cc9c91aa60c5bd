"""The mutable-state builder (`_core.mutable_state`), compiled and pure.

- a long history: a run of 500 sequential activities built transition by transition
  (2,003 transitions, 3,005 events), each ending in what the engine writes (map delta,
  encoded info, history batch bytes);
- 1,000 decisions: one RespondDecisionTaskCompleted carrying 1,000 ScheduleActivityTask
  decisions applied by the engine's DecisionHandler, plus its write set;
- reloading a run with 1,000 pending activities from its stored rows (a cache miss).
"""

from __future__ import annotations

from typing import Any

import pytest
from support import core_module
from workloads import (
    NOW,
    commit,
    completion,
    decision_handler,
    decision_token,
    new_run,
    run_sequential_activities,
    schedule_activity,
    start_decision,
    using_core,
)

LONG_HISTORY_ACTIVITIES = 500
DECISIONS = 1_000


def test_apply_long_history(benchmark: Any, impl: str) -> None:
    core = core_module("mutable_state", impl)
    benchmark.group = f"mutable state: long history ({LONG_HISTORY_ACTIVITIES} activities)"
    with using_core(core):
        handler = decision_handler()
        ms = benchmark.pedantic(
            run_sequential_activities, args=(core, handler, LONG_HISTORY_ACTIVITIES), rounds=5, iterations=1,
            warmup_rounds=1,
        )  # fmt: skip
    assert not ms.is_open()
    assert ms.next_event_id - 1 == 6 * LONG_HISTORY_ACTIVITIES + 5


def test_apply_1000_decisions(benchmark: Any, impl: str) -> None:
    core = core_module("mutable_state", impl)
    benchmark.group = f"mutable state: {DECISIONS} decisions in one completion"
    request = completion([schedule_activity(f"a{i}") for i in range(DECISIONS)])

    with using_core(core):
        handler = decision_handler()

        def setup() -> tuple[tuple[Any, ...], dict[str, Any]]:
            ms = new_run(core)
            start_decision(core, ms, NOW)
            return (ms,), {}

        def apply(ms: Any) -> Any:
            mut = core.Mutation(NOW, ms.next_event_id)
            handler.complete(ms, mut, decision_token(ms), request, None)  # type: ignore[arg-type]
            commit(core, ms, mut)
            return ms

        ms = benchmark.pedantic(apply, setup=setup, rounds=20, iterations=1, warmup_rounds=2)
    assert len(ms.activities) == DECISIONS


def test_reload_1000_pending_activities(benchmark: Any, impl: str) -> None:
    core = core_module("mutable_state", impl)
    benchmark.group = f"mutable state: reload a run with {DECISIONS} pending activities"
    with using_core(core):
        handler = decision_handler()
        ms = new_run(core)
        start_decision(core, ms, NOW)
        mut = core.Mutation(NOW, ms.next_event_id)
        handler.complete(
            ms, mut, decision_token(ms), completion([schedule_activity(f"a{i}") for i in range(DECISIONS)]), None
        )  # type: ignore[arg-type]
    info, maps = ms.encode_info(), ms.encode_maps()
    loaded = benchmark(core.MutableState.load, info, maps)
    assert len(loaded.activities) == DECISIONS


@pytest.mark.parametrize("pending", [1, 1_000])
def test_one_transition_with_pending_activities(benchmark: Any, impl: str, pending: int) -> None:
    """A signal on a run with N pending activities: the per-transition core work must not grow with N."""
    from cadence.api.v1 import history_pb2

    core = core_module("mutable_state", impl)
    benchmark.group = "mutable state: one signal transition (pending activities 1 vs 1,000)"
    with using_core(core):
        handler = decision_handler()
        ms = new_run(core)
        start_decision(core, ms, NOW)
        mut = core.Mutation(NOW, ms.next_event_id)
        handler.complete(
            ms, mut, decision_token(ms), completion([schedule_activity(f"a{i}") for i in range(pending)]), None
        )  # type: ignore[arg-type]
        commit(core, ms, mut)
        engine = handler.engine
        ms.history_complete = False  # as a long-lived run whose history outgrew the cache

        def signal() -> None:
            m = core.Mutation(NOW, ms.next_event_id)
            ms.signal_count += 1
            ms.add_async_event(
                m,
                workflow_execution_signaled_event_attributes=history_pb2.WorkflowExecutionSignaledEventAttributes(
                    signal_name="bench", identity="bench"
                ),
            )
            engine.schedule_decision(ms, m)
            commit(core, ms, m)

        benchmark(signal)
    assert len(ms.activities) == pending
