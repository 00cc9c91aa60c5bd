"""The history engine: shards, mutable state, transitions, and the requests that drive them.

Every state change is a *transition* (DESIGN §4): under the run's lock, load the mutable
state (cache, else store), apply the change (new events, tasks, map delta recorded in a
`Mutation`), write it as ONE conditional store op through the shard's group committer,
and only then notify queues and history long-pollers and reply.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
import zlib
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from cadence.api.v1 import (
    common_pb2,
    history_pb2,
    service_worker_pb2,
    service_workflow_pb2,
    tasklist_pb2,
    workflow_pb2,
)

from cadence_fast import errors
from cadence_fast._core import mutable_state as core
from cadence_fast.config import ServerConfig
from cadence_fast.domain.cache import DomainCache, DomainEntry
from cadence_fast.history import codec, tokens
from cadence_fast.history.activities import ActivityTasks
from cadence_fast.history.cache import ExecutionCache, RunKey
from cadence_fast.history.errors import DecisionFailed, StaleTaskError
from cadence_fast.history.queues import TimerQueue, TransferQueue, now_ns
from cadence_fast.history.shard import Op, Shard
from cadence_fast.history.starts import HISTORY_CACHE_LIMIT, RunIsOpen, WorkflowStarts
from cadence_fast.matching.engine import MatchingEngine
from cadence_fast.matching.task import KIND_NORMAL, KIND_STICKY, MatchTask
from cadence_fast.persistence import errors as store_errors
from cadence_fast.persistence.records import (
    CloseStatus,
    CurrentExecutionRecord,
    HistoryBatch,
    TaskListType,
    TimerTask,
    TransferTask,
    UpdateWorkflow,
    VisibilityRecord,
    WorkflowState,
)
from cadence_fast.persistence.store import Store
from cadence_fast.visibility.search_attributes import SearchAttributeRegistry, visibility_values

log = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")
MutableState = Any  # core.MutableState (compiled or not)
Mutation = Any

NS = core.NS
EMPTY = core.EMPTY_EVENT_ID

CACHE_CAPACITY = 20_000
CHECKPOINT_SECONDS = 5.0
MAX_SIGNALS_PER_RUN = 10_000
DECISION_BACKOFF_CAP_NS = 10 * NS


def shard_of(workflow_id: str, shards: int) -> int:
    """Stable across processes and restarts (Python's hash() is not)."""
    return zlib.crc32(workflow_id.encode()) % shards


class HistoryEngine(WorkflowStarts, ActivityTasks):
    def __init__(
        self, store: Store, config: ServerConfig, domains: DomainCache, matching: MatchingEngine
    ) -> None:
        self.store = store
        self.config = config
        self.domains = domains
        self.matching = matching
        # Visibility rows hold search attributes typed by the registry (datetimes as int ns).
        self.search_attributes = SearchAttributeRegistry.from_config(config)
        self.cache = ExecutionCache(CACHE_CAPACITY)
        self.shards: list[Shard] = []
        self.transfer_queues: list[TransferQueue] = []
        self.timer_queues: list[TimerQueue] = []
        self._waiters: dict[RunKey, list[asyncio.Future[None]]] = {}
        self._checkpoint_task: asyncio.Task[None] | None = None
        self._background: set[asyncio.Task[None]] = set()
        self._started = False
        # imported here: they call back into the engine
        from cadence_fast.history.children import Children
        from cadence_fast.history.decisions import DecisionHandler
        from cadence_fast.history.executors import Executors
        from cadence_fast.history.queries import Queries

        self._decisions = DecisionHandler(self)
        self._executors = Executors(self)
        self._queries = Queries(self)
        self._children = Children(self)

    # --- lifecycle --------------------------------------------------------------------

    async def start(self) -> None:
        if self._started:
            return
        self._started = True
        for shard_id in range(self.config.shards):
            shard = Shard(self.store, shard_id, self._on_committed)
            record = await shard.acquire()
            self.shards.append(shard)
            self.transfer_queues.append(TransferQueue(self.store, shard, self._executors.transfer))
            self.timer_queues.append(TimerQueue(self.store, shard, self._executors.timer))
            log.debug("acquired shard %s range %s", shard_id, record.range_id)
        for shard, tq, tm in zip(self.shards, self.transfer_queues, self.timer_queues, strict=True):
            assert shard.record is not None
            await tq.start(shard.record.transfer_ack_level)
            await tm.start(shard.record.timer_ack_level)
        self._checkpoint_task = asyncio.ensure_future(self._checkpoint_loop())

    async def stop(self) -> None:
        if not self._started:
            return
        self._started = False
        if self._checkpoint_task is not None:
            self._checkpoint_task.cancel()
            try:
                await self._checkpoint_task
            except BaseException:  # noqa: BLE001
                pass
        for task in list(self._background):
            task.cancel()
        for q in self.timer_queues:
            await q.stop()
        for tq in self.transfer_queues:
            await tq.stop()
        try:
            await self._checkpoint()
        except Exception:  # noqa: BLE001 - best effort: the outbox is re-read anyway
            log.warning("final checkpoint failed", exc_info=True)
        for waiters in self._waiters.values():
            for fut in waiters:
                if not fut.done():
                    fut.set_result(None)
        self._waiters.clear()

    async def _checkpoint_loop(self) -> None:
        while True:
            await asyncio.sleep(CHECKPOINT_SECONDS)
            try:
                await self._checkpoint()
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001
                log.warning("checkpoint failed", exc_info=True)

    async def _checkpoint(self) -> None:
        """Persist ack levels and range-delete what is below them."""
        for shard, tq, tm in zip(self.shards, self.transfer_queues, self.timer_queues, strict=True):
            assert shard.record is not None
            transfer_ack = tq.current_ack_level()
            timer_ack = tm.current_ack_level()
            old_transfer, old_timer = shard.record.transfer_ack_level, shard.record.timer_ack_level
            if transfer_ack == old_transfer and timer_ack == old_timer:
                continue
            await shard.persist_ack_levels(transfer_ack, timer_ack)
            if transfer_ack > old_transfer:
                await self.store.complete_transfer_tasks(shard.shard_id, transfer_ack)
            if timer_ack > old_timer:
                await self.store.complete_timer_tasks(shard.shard_id, timer_ack)

    def _on_committed(self, shard: Shard, op: Op) -> None:
        for o in (op, getattr(op, "new_run", None)):
            if o is None:
                continue
            if o.transfer_tasks:
                self.transfer_queues[shard.shard_id].notify(o.transfer_tasks)
            if o.timer_tasks:
                self.timer_queues[shard.shard_id].notify(o.timer_tasks)

    # --- plumbing ---------------------------------------------------------------------

    def shard_for(self, workflow_id: str) -> Shard:
        if not self.shards:
            raise errors.UnavailableError("history engine is not started")
        return self.shards[shard_of(workflow_id, len(self.shards))]

    async def _current_run_id(self, domain_id: str, workflow_id: str) -> str:
        run_id = self.cache.get_current(domain_id, workflow_id)
        if run_id:
            return run_id
        cur = await self._get_current(domain_id, workflow_id)
        if cur is None:
            raise errors.EntityNotExistsError(f"Workflow execution not found for workflow id: {workflow_id}.")
        self.cache.set_current(domain_id, workflow_id, cur.run_id)
        return cur.run_id

    async def _get_current(self, domain_id: str, workflow_id: str) -> CurrentExecutionRecord | None:
        try:
            return await self.store.get_current_execution(
                self.shard_for(workflow_id).shard_id, domain_id, workflow_id
            )
        except store_errors.NotFound:
            return None
        except store_errors.StoreError as e:
            raise errors.UnavailableError(f"store: {e}") from None

    async def resolve_run(self, domain_id: str, execution: common_pb2.WorkflowExecution) -> RunKey:
        run_id = execution.run_id or await self._current_run_id(domain_id, execution.workflow_id)
        return (domain_id, execution.workflow_id, run_id)

    async def load(self, key: RunKey) -> MutableState:
        """The run's mutable state (cache, else store). Callers mutating it must hold the run lock."""
        ms = self.cache.get(key)
        if ms is not None:
            return ms
        domain_id, workflow_id, run_id = key
        try:
            record = await self.store.get_execution(
                self.shard_for(workflow_id).shard_id, domain_id, workflow_id, run_id
            )
        except store_errors.NotFound:
            raise errors.EntityNotExistsError(
                f"Workflow execution not found. WorkflowId: {workflow_id}, RunId: {run_id}."
            ) from None
        except store_errors.StoreError as e:
            raise errors.UnavailableError(f"store: {e}") from None
        ms = core.MutableState.load(record.info, record.maps)
        ms.next_event_id = record.next_event_id
        ms.state = record.state
        ms.close_status = record.close_status
        cached = self.cache.get(key)  # another coroutine may have loaded it meanwhile
        if cached is not None:
            return cached
        self.cache.put(key, ms)
        return ms

    async def load_committed(self, key: RunKey) -> MutableState:
        """The run's state as of its last commit: waits for a transition in flight to finish.

        Read what you need without awaiting in between (a later transition may change it)."""
        if self.cache.idle(key):
            # No transition of the run in flight: a cached state is the committed one.
            ms = self.cache.get(key)
            if ms is not None:
                return ms
        async with self.cache.locked(key):
            return await self.load(key)

    async def transition(self, key: RunKey, fn: Callable[[MutableState, Mutation], T]) -> T:
        """Apply fn to the run's state and commit the mutation it records (retried once on a
        condition failure, from a fresh load). fn raising leaves nothing written."""
        return await self._transition(key, fn, None)

    async def transition_then(
        self,
        key: RunKey,
        fn: Callable[[MutableState, Mutation], Any],
        after: Callable[[MutableState], Awaitable[R]],
    ) -> R:
        """transition(key, fn), then after(state as committed), still under the run's lock:
        what after reads is exactly what this transition wrote (no second lock and load)."""
        return await self._transition(key, fn, after)

    async def _transition(
        self,
        key: RunKey,
        fn: Callable[[MutableState, Mutation], Any],
        after: Callable[[MutableState], Awaitable[Any]] | None,
    ) -> Any:
        shard = self.shard_for(key[1])
        for attempt in range(2):
            async with self.cache.locked(key):
                ms = await self.load(key)
                mut = core.Mutation(now_ns(), ms.next_event_id)
                state, close_status = ms.state, ms.close_status
                try:
                    result = fn(ms, mut)
                except BaseException:
                    if (
                        mut.events
                        or mut.dirty
                        or mut.transfer
                        or mut.timers
                        or ms.next_event_id != mut.condition_next_event_id
                    ):
                        self.cache.evict(key)  # fn changed the state half way: reload next time
                    raise
                if not (
                    mut.events or mut.dirty or mut.transfer or mut.timers or mut.visibility or mut.touched
                ):
                    return result if after is None else await after(ms)
                try:
                    await self._commit_update(
                        shard, ms, mut, ms.state != state or ms.close_status != close_status
                    )
                except store_errors.ConditionFailed:
                    self.cache.evict(key)
                    if attempt == 0:
                        continue
                    raise errors.UnavailableError("workflow was updated concurrently; retry") from None
                except BaseException as e:
                    # Outcome unknown (a cancelled caller's op still commits in the shard's
                    # batch): drop the run and its current-run pointer (a continue-as-new may
                    # have landed) so both are read back from the store.
                    self.cache.evict(key)
                    self.cache.forget_current(key[0], key[1])
                    raise self._store_error(shard, e) from None
                return result if after is None else await after(ms)
        raise AssertionError("unreachable")

    def _store_error(self, shard: Shard, e: BaseException) -> BaseException:
        if isinstance(e, store_errors.ShardOwnershipLost):
            self.cache.clear(lambda wf: shard_of(wf, len(self.shards)) == shard.shard_id)
            if self._started:
                task = asyncio.ensure_future(self._reacquire(shard))
                self._background.add(task)
                task.add_done_callback(self._background.discard)
            return errors.AbortedError(f"shard {shard.shard_id} ownership moved; retry")
        if isinstance(e, store_errors.StoreError):
            return errors.UnavailableError(f"store: {e}")
        return e

    async def _reacquire(self, shard: Shard) -> None:
        try:
            await shard.acquire()
        except Exception:  # noqa: BLE001
            log.exception("shard %s: re-acquire failed", shard.shard_id)

    async def _commit_update(
        self, shard: Shard, ms: MutableState, mut: Mutation, state_changed: bool
    ) -> None:
        """Write the mutation as one conditional UpdateWorkflow (then cache what it made).

        The current row is checked and written (update_current) only when the run's state or
        close status changes: only then does its copy of them change. Otherwise the check
        proves nothing the next_event_id condition does not: the current row leaves an OPEN
        run only by a transaction that also writes that run's row under its next_event_id
        condition (close with continue-as-new/retry/cron, terminate-if-running and reset
        terminate it first); a start that reuses the workflow id needs the current run
        closed, and closing it is a state change, which does check. So an open run that
        passes its condition is still current, and a closed run's row may be updated
        (e.g. clearing stickiness) whether or not it still is. Saves an UPDATE of
        current_executions on most transitions."""
        upserts, deletes = ms.map_delta(mut)
        history: list[HistoryBatch] = []
        data = b""
        if mut.events:
            data = core.history_batch_bytes(mut.events)
            history.append(HistoryBatch(mut.events[0].event_id, mut.events[-1].event_id, data))
            ms.history_size += len(data)
        ms.last_update_time = mut.now
        op = UpdateWorkflow(
            domain_id=ms.domain_id,
            workflow_id=ms.workflow_id,
            run_id=ms.run_id,
            condition_next_event_id=mut.condition_next_event_id,
            next_event_id=ms.next_event_id,
            state=ms.state,
            close_status=ms.close_status,
            info=ms.encode_info(),
            map_upserts=upserts,
            map_deletes=deletes,
            history=history,
            transfer_tasks=self._transfer_tasks(ms, mut),
            timer_tasks=self._timer_tasks(ms, mut),
            visibility=self.visibility_record(ms) if mut.visibility else None,
            update_current=state_changed,
            new_run=mut.new_run[1] if mut.new_run is not None else None,
        )
        await shard.commit(op)
        if mut.new_run is not None:
            new_ms, create = mut.new_run
            new_ms.set_history([b.data for b in create.history], HISTORY_CACHE_LIMIT)
            self.cache.put_if_absent((new_ms.domain_id, new_ms.workflow_id, new_ms.run_id), new_ms)
            self.cache.set_current(new_ms.domain_id, new_ms.workflow_id, new_ms.run_id)
        if data:
            ms.append_history(data, HISTORY_CACHE_LIMIT)
            self._notify_waiters((ms.domain_id, ms.workflow_id, ms.run_id))

    def _transfer_tasks(self, ms: MutableState, mut: Mutation) -> list[TransferTask]:
        return [
            TransferTask(0, task_type, ms.domain_id, ms.workflow_id, ms.run_id, data, mut.now)
            for task_type, data in mut.transfer
        ]

    def _timer_tasks(self, ms: MutableState, mut: Mutation) -> list[TimerTask]:
        # Never before now: the timer queue's ack level may already be past an earlier time.
        return [
            TimerTask(max(at, mut.now), 0, task_type, ms.domain_id, ms.workflow_id, ms.run_id, data)
            for at, task_type, data in mut.timers
        ]

    def visibility_record(self, ms: MutableState) -> VisibilityRecord:
        closed = ms.state == WorkflowState.COMPLETED
        return VisibilityRecord(
            domain_id=ms.domain_id,
            workflow_id=ms.workflow_id,
            run_id=ms.run_id,
            workflow_type=ms.workflow_type,
            start_time=ms.start_time,
            execution_time=ms.execution_time or ms.start_time,
            task_list=ms.task_list,
            close_time=ms.close_time if closed else None,
            close_status=ms.close_status if closed else None,
            history_length=ms.next_event_id - 1,
            is_cron=bool(ms.cron_schedule),
            memo=ms.memo,
            search_attributes=visibility_values(ms.search_attributes, self.search_attributes),
            update_time=ms.last_update_time or ms.start_time,
        )

    # --- history long-poll waiters ------------------------------------------------------

    def _notify_waiters(self, key: RunKey) -> None:
        waiters = self._waiters.pop(key, None)
        if waiters:
            for fut in waiters:
                if not fut.done():
                    fut.set_result(None)

    async def wait_for_change(self, key: RunKey, timeout: float) -> None:  # noqa: ASYNC109
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(key, []).append(fut)
        try:
            await asyncio.wait_for(asyncio.shield(fut), max(0.0, timeout))
        except TimeoutError:
            pass
        finally:
            waiters = self._waiters.get(key)
            if waiters is not None and fut in waiters:
                waiters.remove(fut)
                if not waiters:
                    del self._waiters[key]

    # --- closing a run -----------------------------------------------------------------

    def close_run(self, ms: MutableState, mut: Mutation, status: int) -> None:
        ms.state = WorkflowState.COMPLETED
        ms.close_status = status
        ms.close_time = mut.now
        ms.close_event_id = ms.next_event_id - 1
        mut.visibility = True
        mut.closed = True
        if ms.parent is not None or ms.children:
            mut.transfer.append((codec.TRANSFER_CLOSE, b""))
        if ms.retention > 0:
            mut.timers.append((mut.now + ms.retention, codec.TIMER_DELETE_HISTORY, b""))

    def fail_started_decision_for_close(self, ms: MutableState, mut: Mutation, identity: str) -> None:
        """Closing with a started decision writes its failure first, then the buffered events."""
        if ms.has_started_decision():
            self.fail_decision(
                ms, mut, workflow_pb2.DECISION_TASK_FAILED_CAUSE_FORCE_CLOSE_DECISION, b"", identity
            )
        elif ms.has_pending_decision():
            ms.clear_decision()
        ms.flush_buffered(mut)

    def schedule_decision(self, ms: MutableState, mut: Mutation) -> None:
        """Schedule a decision (and its transfer task) if none is pending."""
        if ms.decision_schedule_id != EMPTY or not ms.is_open():
            return
        if ms.decision_attempt > 0:
            # A retry after a failed or timed-out decision is *transient* (Cadence): no event now;
            # its Scheduled/Started events reach history only if it completes, so a decider that
            # keeps failing does not grow the history.
            schedule_id = ms.next_event_id
            ms.decision_schedule_id = schedule_id
            ms.decision_started_id = EMPTY
            ms.decision_request_id = ""
            ms.decision_timeout = ms.task_timeout
            ms.decision_scheduled_time = mut.now
            if not ms.decision_original_scheduled_time:
                ms.decision_original_scheduled_time = mut.now
            ms.decision_backoff_until = 0
            ms.decision_sticky = ms.sticky_task_list != ""
            mut.decision_scheduled = True
            mut.touched = True
        else:
            event = ms.schedule_decision(mut)
            if event is None:
                return
            schedule_id = event.event_id
        mut.transfer.append((codec.TRANSFER_DECISION, codec.pack(schedule_id, ms.decision_attempt)))
        if ms.decision_sticky and ms.sticky_schedule_to_start > 0:
            # a sticky worker that does not pick it up in time: back to the normal list
            mut.timers.append((
                mut.now + ms.sticky_schedule_to_start, codec.TIMER_DECISION_TIMEOUT,
                codec.pack(schedule_id, ms.decision_attempt, workflow_pb2.TIMEOUT_TYPE_SCHEDULE_TO_START),
            ))  # fmt: skip

    @staticmethod
    def is_transient_decision(ms: MutableState) -> bool:
        """A retried decision not (yet) in history: see schedule_decision."""
        return bool(ms.decision_attempt > 0 and ms.decision_schedule_id != EMPTY)

    def transient_decision_events(self, ms: MutableState) -> list[Any]:
        """The Scheduled/Started events of a started transient decision, as they will be written."""
        task_list = tasklist_pb2.TaskList(name=ms.task_list, kind=tasklist_pb2.TASK_LIST_KIND_NORMAL)
        if ms.decision_sticky and ms.sticky_task_list:
            task_list = tasklist_pb2.TaskList(
                name=ms.sticky_task_list, kind=tasklist_pb2.TASK_LIST_KIND_STICKY
            )
        scheduled = history_pb2.HistoryEvent(
            event_id=ms.decision_schedule_id,
            event_time=core.ts(ms.decision_scheduled_time),
            decision_task_scheduled_event_attributes=history_pb2.DecisionTaskScheduledEventAttributes(
                task_list=task_list,
                start_to_close_timeout=core.dur(ms.decision_timeout),
                attempt=ms.decision_attempt,
            ),
        )
        started = history_pb2.HistoryEvent(
            event_id=ms.decision_schedule_id + 1,
            event_time=core.ts(ms.decision_started_time),
            decision_task_started_event_attributes=history_pb2.DecisionTaskStartedEventAttributes(
                scheduled_event_id=ms.decision_schedule_id, identity=ms.decision_identity,
                request_id=ms.decision_request_id,
            ),
        )  # fmt: skip
        return [scheduled, started]

    def fail_decision(
        self, ms: MutableState, mut: Mutation, cause: int, details: bytes, identity: str, reason: str = ""
    ) -> None:
        """DecisionTaskFailed, except for a transient decision: that one leaves no trace (Cadence)."""
        if self.is_transient_decision(ms):
            ms.clear_decision()
            ms.decision_attempt += 1
            mut.touched = True
            return
        ms.fail_decision(mut, cause, details, identity, reason=reason)

    def time_out_decision(self, ms: MutableState, mut: Mutation, timeout_type: int) -> None:
        if self.is_transient_decision(ms):
            ms.clear_decision()
            ms.decision_attempt += 1
            mut.touched = True
            return
        ms.time_out_decision(mut, timeout_type)

    def schedule_decision_with_backoff(self, ms: MutableState, mut: Mutation) -> None:
        """After repeated decision failures, wait before retrying so a broken workflow does not spin."""
        attempt = ms.decision_attempt
        if attempt < 2:
            self.schedule_decision(ms, mut)
            return
        delay = min(DECISION_BACKOFF_CAP_NS, NS // 2 * (2 ** min(attempt - 2, 10)))
        ms.decision_backoff_until = mut.now + delay
        mut.timers.append((mut.now + delay, codec.TIMER_DECISION_BACKOFF, codec.pack(attempt)))

    # --- signal / cancel / terminate ---------------------------------------------------

    async def signal_workflow(
        self, domain: DomainEntry, request: service_workflow_pb2.SignalWorkflowExecutionRequest
    ) -> service_workflow_pb2.SignalWorkflowExecutionResponse:
        key = await self.resolve_run(domain.id, request.workflow_execution)
        await self._signal(key, request.signal_name, request.signal_input, request.identity, request.request_id,
                           request.control)  # fmt: skip
        return service_workflow_pb2.SignalWorkflowExecutionResponse()

    async def _signal(
        self,
        key: RunKey,
        name: str,
        payload: common_pb2.Payload,
        identity: str,
        request_id: str,
        control: bytes,
    ) -> None:
        def apply(ms: MutableState, mut: Mutation) -> None:
            if not ms.is_open():
                raise errors.WorkflowExecutionAlreadyCompletedError("Workflow execution already completed.")
            if request_id and request_id in ms.signal_requested:
                return  # a retry of a signal already applied
            if ms.signal_count >= MAX_SIGNALS_PER_RUN:
                raise errors.LimitExceededError("Signal count limit exceeded.")
            ms.signal_count += 1
            if request_id:
                ms.add_signal_requested(mut, request_id)
            ms.add_async_event(
                mut,
                workflow_execution_signaled_event_attributes=history_pb2.WorkflowExecutionSignaledEventAttributes(
                    signal_name=name, input=payload, identity=identity, request_id=request_id
                ),
            )
            self.schedule_decision(ms, mut)

        await self.transition(key, apply)

    async def signal_with_start_workflow(
        self, domain: DomainEntry, request: service_workflow_pb2.SignalWithStartWorkflowExecutionRequest
    ) -> service_workflow_pb2.SignalWithStartWorkflowExecutionResponse:
        start = request.start_request
        for _ in range(4):
            cur = self.cache.get_current(domain.id, start.workflow_id)
            current = await self._get_current(domain.id, start.workflow_id) if cur is None else None
            run_id = cur or (current.run_id if current is not None else "")
            if run_id:
                try:
                    await self._signal((domain.id, start.workflow_id, run_id), request.signal_name,
                                       request.signal_input, start.identity, start.request_id, request.control)  # fmt: skip
                    return service_workflow_pb2.SignalWithStartWorkflowExecutionResponse(run_id=run_id)
                except (errors.WorkflowExecutionAlreadyCompletedError, errors.EntityNotExistsError):
                    pass
            try:
                run_id = await self._start(domain, start, request)
            except RunIsOpen:
                self.cache.forget_current(domain.id, start.workflow_id)
                continue
            return service_workflow_pb2.SignalWithStartWorkflowExecutionResponse(run_id=run_id)
        raise errors.UnavailableError("signal-with-start raced with concurrent starts; retry")

    async def request_cancel_workflow(
        self, domain: DomainEntry, request: service_workflow_pb2.RequestCancelWorkflowExecutionRequest
    ) -> service_workflow_pb2.RequestCancelWorkflowExecutionResponse:
        key = await self.resolve_run(domain.id, request.workflow_execution)
        await self._request_cancel(key, request.request_id, request.identity, request.cause, None)
        return service_workflow_pb2.RequestCancelWorkflowExecutionResponse()

    async def _request_cancel(
        self,
        key: RunKey,
        request_id: str,
        identity: str,
        cause: str,
        external: workflow_pb2.ExternalExecutionInfo | None,
    ) -> None:
        def apply(ms: MutableState, mut: Mutation) -> None:
            if not ms.is_open():
                raise errors.WorkflowExecutionAlreadyCompletedError("Workflow execution already completed.")
            if ms.cancel_requested:
                if request_id and request_id == ms.cancel_request_id:
                    return
                raise errors.CancellationAlreadyRequestedError(
                    "Cancellation already requested for this workflow execution."
                )
            ms.cancel_requested = True
            ms.cancel_request_id = request_id
            attrs = history_pb2.WorkflowExecutionCancelRequestedEventAttributes(
                cause=cause, identity=identity, request_id=request_id
            )
            if external is not None:
                attrs.external_execution_info.CopyFrom(external)
            ms.add_async_event(mut, workflow_execution_cancel_requested_event_attributes=attrs)
            self.schedule_decision(ms, mut)

        await self.transition(key, apply)

    async def terminate_workflow(
        self, domain: DomainEntry, request: service_workflow_pb2.TerminateWorkflowExecutionRequest
    ) -> service_workflow_pb2.TerminateWorkflowExecutionResponse:
        key = await self.resolve_run(domain.id, request.workflow_execution)
        await self._terminate(key, request.reason, request.details.data, request.identity)
        return service_workflow_pb2.TerminateWorkflowExecutionResponse()

    async def _terminate(self, key: RunKey, reason: str, details: bytes, identity: str) -> None:
        def apply(ms: MutableState, mut: Mutation) -> None:
            if not ms.is_open():
                raise errors.WorkflowExecutionAlreadyCompletedError("Workflow execution already completed.")
            self.fail_started_decision_for_close(ms, mut, identity)
            attrs = history_pb2.WorkflowExecutionTerminatedEventAttributes(reason=reason, identity=identity)
            attrs.details.data = details
            ms.add_event(mut, workflow_execution_terminated_event_attributes=attrs)
            self.close_run(ms, mut, CloseStatus.TERMINATED)

        await self.transition(key, apply)

    # --- reads -------------------------------------------------------------------------

    async def describe_workflow(
        self, domain: DomainEntry, request: service_workflow_pb2.DescribeWorkflowExecutionRequest
    ) -> service_workflow_pb2.DescribeWorkflowExecutionResponse:
        from cadence_fast.history import views

        key = await self.resolve_run(domain.id, request.workflow_execution)
        ms = await self.load_committed(key)
        return views.describe(ms)

    async def get_workflow_history(
        self,
        domain: DomainEntry,
        request: service_workflow_pb2.GetWorkflowExecutionHistoryRequest,
        timeout: float = 60.0,  # noqa: ASYNC109
    ) -> service_workflow_pb2.GetWorkflowExecutionHistoryResponse:
        from cadence_fast.history import views

        return await views.get_history(self, domain, request, timeout)

    async def read_events(self, ms: MutableState, first_event_id: int, next_event_id: int) -> list[Any]:
        """Events [first, next) of a run, from the in-memory batches or the store."""
        if ms.history_complete:
            data = b"".join(ms.history)
        else:
            batches = await self._read_batches(
                ms, 1 if first_event_id <= 1 else first_event_id, next_event_id
            )
            data = b"".join(b.data for b in batches)
        events = history_pb2.History.FromString(data).events
        return [e for e in events if first_event_id <= e.event_id < next_event_id]

    async def _read_batches(self, ms: MutableState, first: int, nxt: int) -> list[HistoryBatch]:
        shard = self.shard_for(ms.workflow_id)
        out: list[HistoryBatch] = []
        token: bytes | None = None
        while True:
            try:
                page, token = await self.store.read_history(
                    shard.shard_id, ms.domain_id, ms.workflow_id, ms.run_id, first, nxt, 0, token
                )
            except store_errors.StoreError as e:
                raise errors.UnavailableError(f"store: {e}") from None
            out.extend(page)
            if not token:
                return out

    async def full_history_bytes(self, ms: MutableState) -> bytes:
        """Every event of the run as History bytes (cached in memory while small)."""
        if ms.history_complete:
            return b"".join(ms.history)
        batches = await self._read_batches(ms, 1, ms.next_event_id)
        datas = [b.data for b in batches]
        ms.set_history(datas, HISTORY_CACHE_LIMIT)
        return b"".join(datas)

    # --- decision tasks ----------------------------------------------------------------

    async def record_decision_task_started(
        self, task: MatchTask, request: service_worker_pb2.PollForDecisionTaskRequest
    ) -> service_worker_pb2.PollForDecisionTaskResponse:
        from cadence_fast.history import views

        if task.query is not None:
            return await self._queries.task_started(task, request)
        key = (task.domain_id, task.workflow_id, task.run_id)
        request_id = tokens.request_id()  # not uuid4: perf-findings F6

        def apply(ms: MutableState, mut: Mutation) -> None:
            if (
                not ms.is_open()
                or ms.decision_schedule_id != task.scheduled_event_id
                or ms.decision_started_id != EMPTY
            ):
                raise StaleTaskError("decision task is not pending")
            ms.decision_identity = request.identity
            if self.is_transient_decision(ms) and ms.decision_schedule_id == ms.next_event_id:
                # transient: recorded in mutable state only; the reply carries its two events
                ms.decision_started_id = ms.decision_schedule_id + 1
                ms.decision_request_id = request_id
                ms.decision_started_time = mut.now
                mut.touched = True
            else:
                if self.is_transient_decision(ms):
                    # events came in while it was scheduled: it becomes a real decision (Go)
                    ms.decision_attempt = 0
                    event = ms.add_event(
                        mut,
                        decision_task_scheduled_event_attributes=(
                            self.transient_decision_events(ms)[0].decision_task_scheduled_event_attributes
                        ),
                    )
                    ms.decision_schedule_id = event.event_id
                ms.start_decision(mut, request.identity, request_id)
            mut.timers.append((
                mut.now + ms.decision_timeout,
                codec.TIMER_DECISION_TIMEOUT,
                codec.pack(ms.decision_schedule_id, ms.decision_attempt),
            ))  # fmt: skip

        async def reply(ms: MutableState) -> Any:
            # Still under the run's lock, right after the commit: the decision is the one
            # this request started (one lock and load, not a second round after the commit).
            if ms.decision_request_id != request_id:
                raise StaleTaskError("decision moved on")
            history = await self.full_history_bytes(ms)
            transient = self.is_transient_decision(ms)
            if transient:
                history += history_pb2.History(events=self.transient_decision_events(ms)).SerializeToString()
            resp = views.decision_task_response(ms, history, self._backlog_hint(task))
            queries = self._queries.for_decision(key)
            for query_id, query in queries.items():
                resp.queries[query_id].CopyFrom(query)
            if transient:
                resp.next_event_id = ms.decision_started_id + 1  # past the events the reply carries
            return ms, resp

        try:
            ms, resp = await self.transition_then(key, apply, reply)
        except errors.EntityNotExistsError:
            raise StaleTaskError("run not found") from None
        if task.kind == KIND_STICKY:
            # a sticky worker has the workflow cached: only the events since its last decision
            first = ms.last_processed_event + 1 if ms.last_processed_event else 1
            kept = [e for e in resp.history.events if e.event_id >= first]
            del resp.history.events[:]
            resp.history.events.extend(kept)
        return resp

    def _backlog_hint(self, task: MatchTask) -> int:
        return self.matching.backlog_hint(task.domain_id, task.task_list, task.task_type)

    async def respond_decision_task_completed(
        self, request: service_worker_pb2.RespondDecisionTaskCompletedRequest
    ) -> service_worker_pb2.RespondDecisionTaskCompletedResponse:
        token, key = self._decision_by_token(request.task_token)
        domain = await self.domains.get_by_id(token.domain_id)
        try:
            await self.transition(
                key, lambda ms, mut: self._decisions.complete(ms, mut, token, request, domain)
            )
            # Answers to the strong queries this decision task carried (no await since the
            # commit: a waiting QueryWorkflow sees them when it wakes on that commit).
            self._queries.answer_from_decision(key, request.query_results)
        except DecisionFailed as e:
            failed = e

            def fail(ms: MutableState, mut: Mutation) -> None:
                self._check_decision_token(ms, token)
                ms.clear_stickiness()  # Go: stickiness is cleared whenever a decision fails
                self.fail_decision(
                    ms, mut, failed.cause, failed.message.encode(), request.identity, failed.message
                )
                ms.flush_buffered(mut)
                self.schedule_decision_with_backoff(ms, mut)

            await self.transition(key, fail)
        return service_worker_pb2.RespondDecisionTaskCompletedResponse()

    @staticmethod
    def _decision_by_token(task_token: bytes) -> tuple[tokens.TaskToken, RunKey]:
        token = tokens.decode(task_token)
        if token.kind != tokens.KIND_DECISION:
            raise errors.BadRequestError("task_token is not a decision task token.")
        return token, (token.domain_id, token.workflow_id, token.run_id)

    @staticmethod
    def _check_decision_token(ms: MutableState, token: tokens.TaskToken) -> None:
        if (
            not ms.is_open()
            or ms.decision_schedule_id != token.schedule_id
            or ms.decision_started_id == EMPTY
            or ms.decision_attempt != token.attempt
        ):
            raise errors.EntityNotExistsError("Decision task not found.")

    async def respond_decision_task_failed(
        self, request: service_worker_pb2.RespondDecisionTaskFailedRequest
    ) -> service_worker_pb2.RespondDecisionTaskFailedResponse:
        token, key = self._decision_by_token(request.task_token)

        def apply(ms: MutableState, mut: Mutation) -> None:
            self._check_decision_token(ms, token)
            # Go clears stickiness whenever a decision fails: the worker dropped its cached copy,
            # so the retry goes to the normal list with the whole history.
            ms.clear_stickiness()
            self.fail_decision(ms, mut, request.cause, request.details.data, request.identity)
            ms.flush_buffered(mut)
            self.schedule_decision_with_backoff(ms, mut)

        await self.transition(key, apply)
        return service_worker_pb2.RespondDecisionTaskFailedResponse()

    # --- queries ----------------------------------------------------------------------

    async def query_workflow(
        self,
        domain: DomainEntry,
        request: service_workflow_pb2.QueryWorkflowRequest,
        timeout: float = 60.0,  # noqa: ASYNC109
    ) -> service_workflow_pb2.QueryWorkflowResponse:
        return await self._queries.query(domain, request, timeout)

    async def respond_query_task_completed(
        self, request: service_worker_pb2.RespondQueryTaskCompletedRequest
    ) -> service_worker_pb2.RespondQueryTaskCompletedResponse:
        return self._queries.completed(request)

    # --- matching ---------------------------------------------------------------------

    async def dispatch(self, task: MatchTask) -> None:
        await self.matching.add_task(task)

    @staticmethod
    def decision_match_task(ms: MutableState, schedule_id: int, attempt: int, now: int) -> MatchTask:
        sticky = ms.decision_sticky and ms.sticky_task_list != ""
        return MatchTask(
            domain_id=ms.domain_id,
            workflow_id=ms.workflow_id,
            run_id=ms.run_id,
            scheduled_event_id=schedule_id,
            task_list=ms.sticky_task_list if sticky else ms.task_list,
            task_type=TaskListType.DECISION,
            kind=KIND_STICKY if sticky else KIND_NORMAL,
            schedule_attempt=attempt,
            created_time=now,
        )

    async def sticky_unavailable(self, key: RunKey, schedule_id: int) -> None:
        """Matching has no live poller on the sticky list: route this run's decisions normally."""

        def apply(ms: MutableState, mut: Mutation) -> None:
            ms.clear_stickiness()
            if ms.decision_schedule_id == schedule_id:
                ms.decision_sticky = False
            mut.touched = True

        await self.transition(key, apply)

    # --- issue 4: sticky reset, task refresh, restart, reset ----------------------------

    async def reset_workflow(
        self, domain: DomainEntry, request: service_workflow_pb2.ResetWorkflowExecutionRequest
    ) -> service_workflow_pb2.ResetWorkflowExecutionResponse:
        from cadence_fast.history.reset import reset

        return service_workflow_pb2.ResetWorkflowExecutionResponse(run_id=await reset(self, domain, request))

    async def reset_sticky_task_list(
        self, domain: DomainEntry, request: service_worker_pb2.ResetStickyTaskListRequest
    ) -> service_worker_pb2.ResetStickyTaskListResponse:
        key = await self.resolve_run(domain.id, request.workflow_execution)

        def apply(ms: MutableState, mut: Mutation) -> None:
            if not ms.is_open():
                raise errors.WorkflowExecutionAlreadyCompletedError("Workflow execution already completed.")
            if ms.sticky_task_list:
                ms.clear_stickiness()
                mut.touched = True

        await self.transition(key, apply)
        return service_worker_pb2.ResetStickyTaskListResponse()

    async def refresh_workflow_tasks(
        self, domain: DomainEntry, request: service_workflow_pb2.RefreshWorkflowTasksRequest
    ) -> service_workflow_pb2.RefreshWorkflowTasksResponse:
        key = await self.resolve_run(domain.id, request.workflow_execution)
        await self.transition(key, self._executors.refresh_tasks)
        return service_workflow_pb2.RefreshWorkflowTasksResponse()

    async def restart_workflow(
        self, domain: DomainEntry, request: service_workflow_pb2.RestartWorkflowExecutionRequest
    ) -> service_workflow_pb2.RestartWorkflowExecutionResponse:
        """Run the workflow again from its start request; an open current run is terminated."""
        key = await self.resolve_run(domain.id, request.workflow_execution)
        ms = await self.load_committed(key)
        events = await self.read_events(ms, 1, 2)
        if not events or not events[0].HasField("workflow_execution_started_event_attributes"):
            raise errors.EntityNotExistsError("Workflow execution history not found.")
        started = events[0].workflow_execution_started_event_attributes
        req = service_workflow_pb2.StartWorkflowExecutionRequest(
            domain=domain.name,
            workflow_id=ms.workflow_id,
            workflow_type=started.workflow_type,
            task_list=started.task_list,
            input=started.input,
            execution_start_to_close_timeout=started.execution_start_to_close_timeout,
            task_start_to_close_timeout=started.task_start_to_close_timeout,
            identity=request.identity,
            request_id=str(uuid.uuid4()),
            workflow_id_reuse_policy=workflow_pb2.WORKFLOW_ID_REUSE_POLICY_TERMINATE_IF_RUNNING,
            cron_schedule=started.cron_schedule,
        )
        for name in ("retry_policy", "memo", "search_attributes", "header"):
            if started.HasField(name):
                getattr(req, name).CopyFrom(getattr(started, name))
        run_id = await self._start(domain, req, None)
        return service_workflow_pb2.RestartWorkflowExecutionResponse(run_id=run_id)
