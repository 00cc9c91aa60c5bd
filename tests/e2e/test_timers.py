"""Issue 4, timers, with a real official-client worker: a timer fires no earlier than its
duration (event times and wall clock), and a cancelled timer writes TimerCanceled."""

from __future__ import annotations

import time
from typing import Any

from issue4_helpers import attrs, count, first, running, ts, wait_until
from workflows import get_history, kinds, result

TIMER_SECONDS = 1.0


async def test_timer_fires_after_its_duration(server: Any, domain: str) -> None:
    async with running(server.address, domain) as env:
        wall_start = time.time()
        execution = await env.start("I4Timer", TIMER_SECONDS)
        assert await result(env.client, execution, str) == f"slept {TIMER_SECONDS}"
        wall_done = time.time()
        events = await get_history(env.client, execution)
        started = first(events, "timer_started")
        fired = first(events, "timer_fired")
        assert ts(attrs(started).start_to_fire_timeout) == TIMER_SECONDS
        assert attrs(fired).timer_id == attrs(started).timer_id
        assert attrs(fired).started_event_id == started.event_id
        # Never early, by the server's own clock ...
        assert ts(fired.event_time) >= ts(started.event_time) + TIMER_SECONDS, ts(fired.event_time) - ts(
            started.event_time
        )
        # ... nor by the test's: the run cannot close before the timer could fire.
        assert wall_done - wall_start >= TIMER_SECONDS
        # The firing scheduled the decision that completed the run.
        ks = kinds(events)
        assert ks[ks.index("timer_fired") + 1] == "decision_task_scheduled", ks
        assert count(events, "timer_started") == count(events, "timer_fired") == 1


async def test_cancelled_timer(server: Any, domain: str) -> None:
    async with running(server.address, domain) as env:
        execution = await env.start("I4CancelTimer", TIMER_SECONDS)
        await wait_until(env.client, execution, lambda e: "timer_started" in kinds(e), "TimerStarted")
        await env.client.signal_workflow(execution.workflow_id, "", "cancel")
        assert await result(env.client, execution, str) == "long timer cancelled, short timer fired"
        events = await get_history(env.client, execution)
        long_timer, short_timer = [e for e in events if kinds([e]) == ["timer_started"]]
        canceled = first(events, "timer_canceled")
        assert attrs(canceled).timer_id == attrs(long_timer).timer_id
        assert attrs(canceled).started_event_id == long_timer.event_id
        # The cancelled timer never fires; the later one does, and only it.
        fired = [e for e in events if kinds([e]) == ["timer_fired"]]
        assert [attrs(e).timer_id for e in fired] == [attrs(short_timer).timer_id]
        assert ts(fired[0].event_time) >= ts(short_timer.event_time) + TIMER_SECONDS
