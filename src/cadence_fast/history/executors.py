"""Executors of transfer and timer tasks. Each re-checks mutable state: running twice is harmless."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from cadence.api.v1 import common_pb2, history_pb2, workflow_pb2

from cadence_fast import errors
from cadence_fast._core import mutable_state as core
from cadence_fast.history import codec, continuation
from cadence_fast.history.decisions import STARTED_NO_EVENT, activity_match_task
from cadence_fast.history.queues import now_ns
from cadence_fast.persistence import errors as store_errors
from cadence_fast.persistence.records import CloseStatus, TimerTask, TransferTask

if TYPE_CHECKING:
    from cadence_fast.history.engine import HistoryEngine

EMPTY = core.EMPTY_EVENT_ID
C = workflow_pb2


class Executors:
    def __init__(self, engine: HistoryEngine) -> None:
        self.engine = engine

    # --- transfer ------------------------------------------------------------------------

    async def transfer(self, task: TransferTask, done: Callable[[], None]) -> None:
        key = (task.domain_id, task.workflow_id, task.run_id)
        try:
            ms = await self.engine.load_committed(key)
        except errors.EntityNotExistsError:
            done()
            return
        args = codec.unpack(task.data)
        if task.task_type == codec.TRANSFER_DECISION:
            schedule_id, attempt = args
            if not ms.is_open() or ms.decision_schedule_id != schedule_id or ms.decision_started_id != EMPTY:
                done()
                return
            mt = self.engine.decision_match_task(ms, schedule_id, attempt, now_ns())
        elif task.task_type == codec.TRANSFER_ACTIVITY:
            schedule_id, attempt = args
            a = ms.activities.get(schedule_id) if ms.is_open() else None
            if a is None or a.started_id != EMPTY or a.attempt != attempt:
                done()
                return
            mt = activity_match_task(ms, a, now_ns())
        elif task.task_type == codec.TRANSFER_START_CHILD:
            await self.engine._children.execute_start_child(task, done)
            return
        elif task.task_type == codec.TRANSFER_SIGNAL:
            await self.engine._children.execute_signal(task, done)
            return
        elif task.task_type == codec.TRANSFER_CANCEL:
            await self.engine._children.execute_cancel(task, done)
            return
        elif task.task_type == codec.TRANSFER_CLOSE:
            await self.engine._children.execute_close(task, done)
            return
        else:
            done()
            return
        mt.on_done = done
        try:
            await self.engine.dispatch(mt)
        except errors.StickyWorkerUnavailableError:
            # Go: StickyWorkerUnavailable -> the workflow's normal task list
            await self.engine.sticky_unavailable(key, mt.scheduled_event_id)
            ms = await self.engine.load_committed(key)
            normal = self.engine.decision_match_task(ms, mt.scheduled_event_id, mt.schedule_attempt, now_ns())
            normal.on_done = done
            await self.engine.dispatch(normal)

    # --- timers --------------------------------------------------------------------------

    async def timer(self, task: TimerTask) -> None:
        key = (task.domain_id, task.workflow_id, task.run_id)
        if task.task_type == codec.TIMER_DELETE_HISTORY:
            await self._delete_history(task)
            return
        handler = self._timer_handlers.get(task.task_type)
        if handler is None:
            return
        args = codec.unpack(task.data)
        if task.task_type == codec.TIMER_WORKFLOW_TIMEOUT:
            args = (await self.engine.domains.get_by_id(task.domain_id),)
        try:
            await self.engine.transition(key, lambda ms, mut: handler(self, ms, mut, args))
        except (errors.EntityNotExistsError, errors.WorkflowExecutionAlreadyCompletedError):
            pass

    def _decision_timeout(self, ms: Any, mut: Any, args: tuple[Any, ...]) -> None:
        schedule_id, attempt = args[:2]
        timeout_type = args[2] if len(args) > 2 else C.TIMEOUT_TYPE_START_TO_CLOSE
        if not ms.is_open() or ms.decision_schedule_id != schedule_id or ms.decision_attempt != attempt:
            return
        started = ms.decision_started_id != EMPTY
        if started != (timeout_type == C.TIMEOUT_TYPE_START_TO_CLOSE):
            return  # a schedule-to-start timer of a decision that started meanwhile, or the reverse
        if ms.decision_sticky or timeout_type == C.TIMEOUT_TYPE_SCHEDULE_TO_START:
            ms.clear_stickiness()  # the sticky worker did not answer: back to the normal list
        self.engine.time_out_decision(ms, mut, timeout_type)
        ms.flush_buffered(mut)
        self.engine.schedule_decision(ms, mut)

    def refresh_tasks(self, ms: Any, mut: Any) -> None:
        """RefreshWorkflowTasks: write every task the run's pending state needs again."""
        if not ms.is_open():
            return
        engine = self.engine
        now = mut.now
        if ms.decision_schedule_id != EMPTY:
            if ms.decision_started_id == EMPTY:
                mut.transfer.append(
                    (codec.TRANSFER_DECISION, codec.pack(ms.decision_schedule_id, ms.decision_attempt))
                )
            else:
                mut.timers.append((
                    ms.decision_started_time + ms.decision_timeout, codec.TIMER_DECISION_TIMEOUT,
                    codec.pack(ms.decision_schedule_id, ms.decision_attempt),
                ))  # fmt: skip
        elif ms.last_processed_event == EMPTY and ms.execution_time > now:
            mut.timers.append((ms.execution_time, codec.TIMER_WORKFLOW_BACKOFF, b""))
        elif ms.decision_backoff_until:
            mut.timers.append(
                (ms.decision_backoff_until, codec.TIMER_DECISION_BACKOFF, codec.pack(ms.decision_attempt))
            )
        for a in ms.activities.values():
            if a.started_id == EMPTY:
                if a.attempt_scheduled_time > now:
                    mut.timers.append((
                        a.attempt_scheduled_time, codec.TIMER_ACTIVITY_RETRY, codec.pack(a.schedule_id, a.attempt)
                    ))  # fmt: skip
                else:
                    engine._decisions.schedule_activity_attempt(ms, mut, a)
                continue
            for timeout_type, at in (
                (
                    C.TIMEOUT_TYPE_SCHEDULE_TO_CLOSE,
                    (a.attempt_scheduled_time or a.scheduled_time) + a.schedule_to_close,
                ),
                (C.TIMEOUT_TYPE_START_TO_CLOSE, a.started_time + a.start_to_close),
                (C.TIMEOUT_TYPE_HEARTBEAT, max(a.started_time, a.last_heartbeat_time) + a.heartbeat_timeout),
            ):
                if at > a.started_time and (
                    timeout_type != C.TIMEOUT_TYPE_HEARTBEAT or a.heartbeat_timeout > 0
                ):
                    mut.timers.append((
                        at, codec.TIMER_ACTIVITY_TIMEOUT, codec.pack(a.schedule_id, timeout_type, a.attempt)
                    ))  # fmt: skip
        for t in ms.timers.values():
            mut.timers.append((t.expiry_time, codec.TIMER_USER, codec.pack(t.timer_id, t.started_id)))
        if ms.execution_timeout:
            mut.timers.append((
                (ms.execution_time or ms.start_time) + ms.execution_timeout, codec.TIMER_WORKFLOW_TIMEOUT, b""
            ))  # fmt: skip
        for iid, c in ms.children.items():
            if c["started_id"] == EMPTY:
                mut.transfer.append((codec.TRANSFER_START_CHILD, codec.pack(iid)))
        for iid in ms.external_signals:
            mut.transfer.append((codec.TRANSFER_SIGNAL, codec.pack(iid)))
        for iid in ms.external_cancels:
            mut.transfer.append((codec.TRANSFER_CANCEL, codec.pack(iid)))

    def _activity_timeout(self, ms: Any, mut: Any, args: tuple[Any, ...]) -> None:
        schedule_id, timeout_type, attempt = args
        a = ms.activities.get(schedule_id) if ms.is_open() else None
        if a is None or a.attempt != attempt:
            return
        started = a.started_id != EMPTY
        if timeout_type == C.TIMEOUT_TYPE_SCHEDULE_TO_START and started:
            return
        if timeout_type in (C.TIMEOUT_TYPE_START_TO_CLOSE, C.TIMEOUT_TYPE_HEARTBEAT) and not started:
            return
        if timeout_type == C.TIMEOUT_TYPE_HEARTBEAT:
            last = max(a.last_heartbeat_time, a.started_time)
            if last + a.heartbeat_timeout > mut.now:
                # a heartbeat arrived since: wait for the next deadline
                mut.timers.append((
                    last + a.heartbeat_timeout, codec.TIMER_ACTIVITY_TIMEOUT,
                    codec.pack(schedule_id, C.TIMEOUT_TYPE_HEARTBEAT, attempt),
                ))  # fmt: skip
                return
        decisions = self.engine._decisions
        if timeout_type != C.TIMEOUT_TYPE_SCHEDULE_TO_CLOSE:
            reason = "cadenceInternal:Timeout " + C.TimeoutType.Name(timeout_type).removeprefix(
                "TIMEOUT_TYPE_"
            )
            if decisions.retry_activity(ms, mut, a, reason, a.details):
                return
        decisions.write_deferred_started(ms, mut, a)
        attrs = history_pb2.ActivityTaskTimedOutEventAttributes(
            scheduled_event_id=schedule_id,
            started_event_id=a.started_id if started and a.started_id != STARTED_NO_EVENT else EMPTY,
            timeout_type=timeout_type,
        )
        attrs.details.data = a.details
        if a.last_failure_reason:
            attrs.last_failure.reason = a.last_failure_reason
            attrs.last_failure.details = a.last_failure_details
        ms.add_async_event(mut, activity_task_timed_out_event_attributes=attrs)
        ms.delete_activity(mut, schedule_id)
        self.engine.schedule_decision(ms, mut)

    def _user_timer(self, ms: Any, mut: Any, args: tuple[Any, ...]) -> None:
        timer_id, started_id = args
        t = ms.timers.get(timer_id) if ms.is_open() else None
        if t is None or t.started_id != started_id:
            return
        ms.delete_timer(mut, timer_id)
        ms.add_async_event(
            mut,
            timer_fired_event_attributes=history_pb2.TimerFiredEventAttributes(
                timer_id=timer_id, started_event_id=started_id
            ),
        )
        self.engine.schedule_decision(ms, mut)

    def _workflow_timeout(self, ms: Any, mut: Any, args: tuple[Any, ...]) -> None:
        if not ms.is_open():
            return
        self.engine.fail_started_decision_for_close(ms, mut, "cadence-history")
        (domain,) = args
        failure = common_pb2.Failure(reason="cadenceInternal:Timeout START_TO_CLOSE")
        if continuation.close_or_continue(
            self.engine, ms, mut, domain, CloseStatus.TIMED_OUT, EMPTY, failure=failure
        ):
            return
        ms.add_event(
            mut,
            workflow_execution_timed_out_event_attributes=history_pb2.WorkflowExecutionTimedOutEventAttributes(
                timeout_type=C.TIMEOUT_TYPE_START_TO_CLOSE
            ),
        )
        self.engine.close_run(ms, mut, CloseStatus.TIMED_OUT)

    def _activity_retry(self, ms: Any, mut: Any, args: tuple[Any, ...]) -> None:
        schedule_id, attempt = args
        a = ms.activities.get(schedule_id) if ms.is_open() else None
        if a is None or a.attempt != attempt or a.started_id != EMPTY:
            return
        self.engine._decisions.schedule_activity_attempt(ms, mut, a)

    def _workflow_backoff(self, ms: Any, mut: Any, args: tuple[Any, ...]) -> None:
        if ms.is_open() and ms.last_processed_event == EMPTY:
            self.engine.schedule_decision(ms, mut)

    def _decision_backoff(self, ms: Any, mut: Any, args: tuple[Any, ...]) -> None:
        if ms.is_open() and ms.decision_backoff_until:
            self.engine.schedule_decision(ms, mut)

    async def _delete_history(self, task: TimerTask) -> None:
        """Retention: a closed run's state, history and visibility row go."""
        key = (task.domain_id, task.workflow_id, task.run_id)
        engine = self.engine
        shard = engine.shard_for(task.workflow_id)
        async with engine.cache.locked(key):
            try:
                ms = await engine.load(key)
            except errors.EntityNotExistsError:
                return
            if ms.is_open():
                return
            try:
                await engine.store.delete_execution(shard.shard_id, *key)
                await engine.store.delete_visibility(task.domain_id, task.run_id)
            except store_errors.NotFound:
                pass
            engine.cache.evict(key)
            if engine.cache.get_current(task.domain_id, task.workflow_id) == task.run_id:
                engine.cache.forget_current(task.domain_id, task.workflow_id)

    _timer_handlers: dict[int, Any] = {
        codec.TIMER_DECISION_TIMEOUT: _decision_timeout,
        codec.TIMER_ACTIVITY_TIMEOUT: _activity_timeout,
        codec.TIMER_USER: _user_timer,
        codec.TIMER_WORKFLOW_TIMEOUT: _workflow_timeout,
        codec.TIMER_ACTIVITY_RETRY: _activity_retry,
        codec.TIMER_WORKFLOW_BACKOFF: _workflow_backoff,
        codec.TIMER_DECISION_BACKOFF: _decision_backoff,
    }
