"""Starting runs: StartWorkflowExecution (request-id idempotency, the workflow-id reuse
policies, first-decision backoff) and the CreateWorkflow op every new run is written with
(also used by signal-with-start, continue-as-new, child workflows and reset).

A mixin of HistoryEngine; the public methods stay on the engine.
"""

from __future__ import annotations

import random
import uuid
from typing import TYPE_CHECKING, Any

from cadence.api.v1 import history_pb2, service_workflow_pb2, workflow_pb2

from cadence_fast import errors
from cadence_fast._core import mutable_state as core
from cadence_fast.domain.cache import DomainEntry
from cadence_fast.history import codec, cron, retry
from cadence_fast.history.continuation import Continuation
from cadence_fast.history.queues import now_ns
from cadence_fast.persistence import errors as store_errors
from cadence_fast.persistence.records import (
    CloseStatus,
    CreateMode,
    CreateWorkflow,
    CurrentExecutionRecord,
    HistoryBatch,
    WorkflowSnapshot,
    WorkflowState,
)
from cadence_fast.visibility.search_attributes import decode_search_attributes

MutableState = Any
Mutation = Any
NS = core.NS
HISTORY_CACHE_LIMIT = 1 << 20  # bytes of history kept in memory per run

_CLOSED_STATUSES_FOR_FAILED_ONLY = (
    CloseStatus.FAILED,
    CloseStatus.CANCELED,
    CloseStatus.TERMINATED,
    CloseStatus.TIMED_OUT,
)


class RunIsOpen(Exception):
    """Signal-with-start found an open run while starting: signal that one instead."""

    def __init__(self, run_id: str) -> None:
        super().__init__(run_id)
        self.run_id = run_id


class WorkflowStarts:
    if TYPE_CHECKING:  # provided by HistoryEngine
        search_attributes: Any
        _get_current: Any
        _store_error: Any
        _terminate: Any
        _timer_tasks: Any
        _transfer_tasks: Any
        cache: Any
        schedule_decision: Any
        shard_for: Any
        visibility_record: Any

    async def start_workflow(
        self, domain: DomainEntry, request: service_workflow_pb2.StartWorkflowExecutionRequest
    ) -> service_workflow_pb2.StartWorkflowExecutionResponse:
        run_id = await self._start(domain, request, None)
        return service_workflow_pb2.StartWorkflowExecutionResponse(run_id=run_id)

    async def _start(
        self,
        domain: DomainEntry,
        req: service_workflow_pb2.StartWorkflowExecutionRequest,
        signal: service_workflow_pb2.SignalWithStartWorkflowExecutionRequest | None,
        parent: tuple[str, str, str, str, int] | None = None,
    ) -> str:
        if domain.deprecated:
            raise errors.BadRequestError(f"Domain {domain.name} is deprecated.")
        if req.cron_schedule:
            try:
                cron.parse_cron(req.cron_schedule)
            except cron.CronError as e:
                raise errors.BadRequestError(f"Invalid CronSchedule: {e}") from None
        if req.HasField("search_attributes"):
            # unknown keys and mistyped values: BadRequestError naming the key (Go validates too)
            decode_search_attributes(req.search_attributes, self.search_attributes)
        shard = self.shard_for(req.workflow_id)
        mode = CreateMode.BRAND_NEW
        previous_run_id = ""
        policy = req.workflow_id_reuse_policy
        for _ in range(8):
            ms, op = self._new_run(domain, req, signal, mode, previous_run_id, parent=parent)
            try:
                await shard.commit(op)
            except (store_errors.AlreadyExists, store_errors.ConditionFailed) as e:
                current = getattr(e, "current", None) or await self._get_current(domain.id, req.workflow_id)
                if current is None:
                    mode, previous_run_id = CreateMode.BRAND_NEW, ""
                    continue
                if current.create_request_id == req.request_id and req.request_id:
                    return current.run_id
                if current.state != WorkflowState.COMPLETED:
                    if signal is not None:
                        raise RunIsOpen(current.run_id) from None
                    if policy != workflow_pb2.WORKFLOW_ID_REUSE_POLICY_TERMINATE_IF_RUNNING:
                        raise errors.WorkflowExecutionAlreadyStartedError(
                            f"Workflow execution is already running. WorkflowId: {req.workflow_id}, "
                            f"RunId: {current.run_id}.",
                            current.create_request_id,
                            current.run_id,
                        ) from None
                    try:
                        await self._terminate(
                            (domain.id, req.workflow_id, current.run_id),
                            "TerminateIfRunning Policy",
                            b"",
                            req.identity,
                        )
                    except errors.WorkflowExecutionAlreadyCompletedError:
                        pass
                else:
                    self._check_reuse_policy(policy, current, req.workflow_id)
                mode, previous_run_id = CreateMode.WORKFLOW_ID_REUSE, current.run_id
                continue
            except BaseException as e:
                # Outcome unknown (e.g. the caller was cancelled; the op still commits):
                # the cached current-run pointer may now be stale, read it from the store.
                self.cache.forget_current(domain.id, req.workflow_id)
                raise self._store_error(shard, e) from None
            key = (domain.id, req.workflow_id, ms.run_id)
            assert isinstance(op, CreateWorkflow)
            ms.set_history([b.data for b in op.history], HISTORY_CACHE_LIMIT)
            self.cache.put_if_absent(key, ms)
            self.cache.set_current(domain.id, req.workflow_id, ms.run_id)
            return str(ms.run_id)
        raise errors.UnavailableError("workflow start raced with concurrent starts; retry")

    @staticmethod
    def _check_reuse_policy(policy: int, current: CurrentExecutionRecord, workflow_id: str) -> None:
        if policy == workflow_pb2.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE:
            raise errors.WorkflowExecutionAlreadyStartedError(
                f"Workflow execution already finished. WorkflowId: {workflow_id}, RunId: {current.run_id}. "
                "Workflow ID reuse policy: reject duplicate workflow ID.",
                current.create_request_id,
                current.run_id,
            )
        if (
            policy
            in (
                workflow_pb2.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE_FAILED_ONLY,
                workflow_pb2.WORKFLOW_ID_REUSE_POLICY_INVALID,
            )
            and current.close_status not in _CLOSED_STATUSES_FOR_FAILED_ONLY
        ):
            raise errors.WorkflowExecutionAlreadyStartedError(
                f"Workflow execution already finished successfully. WorkflowId: {workflow_id}, "
                f"RunId: {current.run_id}. Workflow ID reuse policy: allow duplicate workflow ID if last run failed.",
                current.create_request_id,
                current.run_id,
            )

    def _new_run(
        self,
        domain: DomainEntry,
        req: service_workflow_pb2.StartWorkflowExecutionRequest,
        signal: service_workflow_pb2.SignalWithStartWorkflowExecutionRequest | None,
        mode: CreateMode,
        previous_run_id: str,
        continued: Continuation | None = None,
        parent: tuple[str, str, str, str, int] | None = None,
    ) -> tuple[MutableState, CreateWorkflow]:
        # a successor run starts at its predecessor's close: its backoff was computed from then
        now = continued.now if continued is not None and continued.now else now_ns()
        run_id = str(uuid.uuid4())
        ms = core.MutableState()
        ms.domain_id = domain.id
        ms.domain_name = domain.name
        ms.workflow_id = req.workflow_id
        ms.run_id = run_id
        ms.first_run_id = run_id
        ms.workflow_type = req.workflow_type.name
        ms.task_list = req.task_list.name
        ms.execution_timeout = core.dur_ns(req.execution_start_to_close_timeout)
        ms.task_timeout = core.dur_ns(req.task_start_to_close_timeout) or 10 * NS
        ms.create_request_id = req.request_id
        ms.start_time = now
        ms.identity = req.identity
        ms.retention = domain.retention_seconds * NS
        ms.cron_schedule = req.cron_schedule
        ms.cron_overlap_policy = int(req.cron_overlap_policy)
        if req.HasField("memo"):
            ms.memo = req.memo.SerializeToString()
        if req.HasField("search_attributes"):
            ms.search_attributes = req.search_attributes.SerializeToString()
        if req.HasField("retry_policy"):
            ms.retry_policy = req.retry_policy.SerializeToString()
        if ms.retry_policy or ms.cron_schedule:
            ms.start_input = req.input.data
            if req.HasField("header"):
                ms.start_header = req.header.SerializeToString()
        ms.history_complete = True
        if continued is not None:
            backoff = continued.backoff
            ms.first_run_id = continued.first_run_id
            ms.attempt = continued.attempt
            ms.expiration_time = continued.expiration_time
        else:
            backoff = self._first_decision_backoff(req, now)
            if req.HasField("retry_policy"):
                ms.expiration_time = retry.workflow_expiration_time(req.retry_policy, now)
        ms.execution_time = now + backoff

        mut = core.Mutation(now, 0)
        started = history_pb2.WorkflowExecutionStartedEventAttributes(
            workflow_type=req.workflow_type,
            task_list=req.task_list,
            input=req.input,
            execution_start_to_close_timeout=req.execution_start_to_close_timeout,
            task_start_to_close_timeout=core.dur(ms.task_timeout),
            original_execution_run_id=run_id,
            identity=req.identity,
            first_execution_run_id=ms.first_run_id,
            attempt=ms.attempt,
            cron_schedule=req.cron_schedule,
            request_id=req.request_id,
            cron_overlap_policy=req.cron_overlap_policy,
        )
        for name in (
            "retry_policy",
            "memo",
            "search_attributes",
            "header",
            "active_cluster_selection_policy",
        ):
            if req.HasField(name):
                getattr(started, name).CopyFrom(getattr(req, name))
        if backoff:
            started.first_decision_task_backoff.CopyFrom(core.dur(backoff))
        if ms.expiration_time:
            started.expiration_time.CopyFrom(core.ts(ms.expiration_time))
        if continued is not None:
            started.continued_execution_run_id = previous_run_id
            started.initiator = continued.initiator  # type: ignore[assignment]
            if continued.failure is not None:
                started.continued_failure.CopyFrom(continued.failure)
            if continued.last_completion_result is not None:
                started.last_completion_result.CopyFrom(continued.last_completion_result)
        started.first_scheduled_time.CopyFrom(core.ts(now))
        if parent is not None:
            ms.parent = parent
            p_domain_id, p_domain_name, p_workflow_id, p_run_id, initiated_id = parent
            started.parent_execution_info.domain_id = p_domain_id
            started.parent_execution_info.domain_name = p_domain_name
            started.parent_execution_info.workflow_execution.workflow_id = p_workflow_id
            started.parent_execution_info.workflow_execution.run_id = p_run_id
            started.parent_execution_info.initiated_id = initiated_id
        ms.add_event(mut, workflow_execution_started_event_attributes=started)
        if signal is not None:
            ms.add_event(
                mut,
                workflow_execution_signaled_event_attributes=history_pb2.WorkflowExecutionSignaledEventAttributes(
                    signal_name=signal.signal_name, input=signal.signal_input, identity=req.identity,
                    request_id=req.request_id,
                ),
            )  # fmt: skip
            ms.signal_count = 1
        if backoff:
            mut.timers.append((now + backoff, codec.TIMER_WORKFLOW_BACKOFF, b""))
        else:
            self.schedule_decision(ms, mut)
        if ms.execution_timeout:
            mut.timers.append((now + backoff + ms.execution_timeout, codec.TIMER_WORKFLOW_TIMEOUT, b""))
        return ms, self.create_op(ms, mut, mode, previous_run_id, mut.events)

    def create_op(
        self, ms: MutableState, mut: Mutation, mode: CreateMode, previous_run_id: str, events: list[Any]
    ) -> CreateWorkflow:
        """The store op creating a new run: its state, first history batch, tasks and visibility row."""
        data = core.history_batch_bytes(events)
        ms.history_size = len(data)
        ms.last_update_time = mut.now
        snapshot = WorkflowSnapshot(
            domain_id=ms.domain_id,
            workflow_id=ms.workflow_id,
            run_id=ms.run_id,
            next_event_id=ms.next_event_id,
            state=WorkflowState.RUNNING,
            close_status=CloseStatus.NONE,
            create_request_id=ms.create_request_id,
            start_time=ms.start_time,
            info=ms.encode_info(),
            maps=ms.encode_maps(),
        )
        return CreateWorkflow(
            snapshot=snapshot,
            mode=mode,
            previous_run_id=previous_run_id,
            history=[HistoryBatch(events[0].event_id, events[-1].event_id, data)],
            transfer_tasks=self._transfer_tasks(ms, mut),
            timer_tasks=self._timer_tasks(ms, mut),
            visibility=self.visibility_record(ms),
        )

    @staticmethod
    def _first_decision_backoff(req: service_workflow_pb2.StartWorkflowExecutionRequest, now: int) -> int:
        backoff = core.dur_ns(req.delay_start) if req.HasField("delay_start") else 0
        if req.HasField("jitter_start"):
            jitter = core.dur_ns(req.jitter_start)
            if jitter > 0:
                backoff += random.randrange(jitter)
        if req.HasField("first_run_at"):
            first = core.ts_ns(req.first_run_at)
            if first > now:
                backoff = max(backoff, first - now)
        if req.cron_schedule:
            # a cron workflow's first run waits for the schedule's first tick
            backoff = max(backoff, cron.backoff_ns(req.cron_schedule, now))
        return max(0, backoff)
