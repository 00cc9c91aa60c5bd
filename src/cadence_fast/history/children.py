"""Child workflows, signals to other workflows and cancel requests to them (client-contract §4b/§4d).

Each is a decision that writes an *Initiated* event plus a map entry and a transfer
task in the source run's transaction. The transfer executor then acts on the target
run (its own transition, on its own shard) and records the outcome back in the
source run (Started / StartFailed, Signaled / SignalFailed, CancelRequested /
CancelFailed). Request ids make a repeated execution harmless: a child start with the
same request id returns the same run, a signal or cancel with the same request id is
not applied twice. A closing run notifies its parent and applies its parent close
policy to its own children through the CloseExecution transfer task.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cadence.api.v1 import (
    common_pb2,
    decision_pb2,
    history_pb2,
    service_workflow_pb2,
    workflow_pb2,
)

from cadence_fast import errors
from cadence_fast._core import mutable_state as core
from cadence_fast.history import codec, cron
from cadence_fast.history.errors import DecisionFailed
from cadence_fast.persistence.records import CloseStatus, TransferTask

if TYPE_CHECKING:
    from cadence_fast.history.cache import RunKey
    from cadence_fast.history.decisions import _Context
    from cadence_fast.history.engine import HistoryEngine

C = workflow_pb2
EMPTY = core.EMPTY_EVENT_ID
MAP_CHILD = core.MAP_CHILD_EXECUTION
MAP_CANCEL = core.MAP_REQUEST_CANCEL
MAP_SIGNAL = core.MAP_SIGNAL

_CHILD_OUTCOMES = {
    "workflow_execution_completed_event_attributes": "child_workflow_execution_completed_event_attributes",
    "workflow_execution_failed_event_attributes": "child_workflow_execution_failed_event_attributes",
    "workflow_execution_canceled_event_attributes": "child_workflow_execution_canceled_event_attributes",
    "workflow_execution_timed_out_event_attributes": "child_workflow_execution_timed_out_event_attributes",
    "workflow_execution_terminated_event_attributes": "child_workflow_execution_terminated_event_attributes",
}


def _execution(workflow_id: str, run_id: str = "") -> common_pb2.WorkflowExecution:
    return common_pb2.WorkflowExecution(workflow_id=workflow_id, run_id=run_id)


def child_entry(
    initiated: history_pb2.StartChildWorkflowExecutionInitiatedEventAttributes, domain_id: str, identity: str
) -> dict[str, Any]:
    """The pending-child map entry; it keeps the child's start request (a fresh request id
    makes a repeated start of this child return the same run)."""
    request = service_workflow_pb2.StartWorkflowExecutionRequest(
        domain=initiated.domain,
        workflow_id=initiated.workflow_id,
        workflow_type=initiated.workflow_type,
        task_list=initiated.task_list,
        input=initiated.input,
        execution_start_to_close_timeout=initiated.execution_start_to_close_timeout,
        task_start_to_close_timeout=initiated.task_start_to_close_timeout,
        identity=identity,
        request_id=str(uuid.uuid4()),
        workflow_id_reuse_policy=initiated.workflow_id_reuse_policy,
        cron_schedule=initiated.cron_schedule,
    )
    for name in ("retry_policy", "header", "memo", "search_attributes"):
        if initiated.HasField(name):
            getattr(request, name).CopyFrom(getattr(initiated, name))
    return {
        "workflow_id": initiated.workflow_id,
        "run_id": "",
        "started_id": EMPTY,
        "domain": initiated.domain,
        "domain_id": domain_id,
        "workflow_type": initiated.workflow_type.name,
        "policy": int(initiated.parent_close_policy),
        "request": request.SerializeToString(),
        "control": initiated.control,
        "dtc_id": initiated.decision_task_completed_event_id,
    }


def external_signal_entry(
    initiated: history_pb2.SignalExternalWorkflowExecutionInitiatedEventAttributes, domain_id: str
) -> dict[str, Any]:
    return {
        "request_id": str(uuid.uuid4()),
        "domain": initiated.domain,
        "domain_id": domain_id,
        "workflow_id": initiated.workflow_execution.workflow_id,
        "run_id": initiated.workflow_execution.run_id,
        "signal_name": initiated.signal_name,
        "input": initiated.input.data,
        "control": initiated.control,
        "child_only": initiated.child_workflow_only,
        "dtc_id": initiated.decision_task_completed_event_id,
    }


def external_cancel_entry(
    initiated: history_pb2.RequestCancelExternalWorkflowExecutionInitiatedEventAttributes, domain_id: str
) -> dict[str, Any]:
    return {
        "request_id": str(uuid.uuid4()),
        "domain": initiated.domain,
        "domain_id": domain_id,
        "workflow_id": initiated.workflow_execution.workflow_id,
        "run_id": initiated.workflow_execution.run_id,
        "control": initiated.control,
        "child_only": initiated.child_workflow_only,
        "dtc_id": initiated.decision_task_completed_event_id,
    }


@dataclass(frozen=True)
class _ExternalKind:
    """What differs between delivering a signal and a cancel request to another run."""

    initiated_field: str  # the Initiated event the decision writes
    entry: Callable[[Any, str], dict[str, Any]]  # its pending entry (initiated attributes, target domain id)
    pending: str  # the mutable state map of initiated requests, by initiated event id
    map_kind: int
    transfer: int  # the transfer task that delivers it
    unknown_cause: int  # the target run does not exist
    completed_cause: int  # the target run is closed
    failed_field: str
    failed_attrs: Any  # the *FailedEventAttributes message class
    done_field: str
    done_attrs: Callable[[int, dict[str, Any], common_pb2.WorkflowExecution], Any]


_SIGNAL = _ExternalKind(
    initiated_field="signal_external_workflow_execution_initiated_event_attributes",
    entry=external_signal_entry,
    pending="external_signals",
    map_kind=MAP_SIGNAL,
    transfer=codec.TRANSFER_SIGNAL,
    unknown_cause=C.SIGNAL_EXTERNAL_WORKFLOW_EXECUTION_FAILED_CAUSE_UNKNOWN_EXTERNAL_WORKFLOW_EXECUTION,
    completed_cause=C.SIGNAL_EXTERNAL_WORKFLOW_EXECUTION_FAILED_CAUSE_WORKFLOW_ALREADY_COMPLETED,
    failed_field="signal_external_workflow_execution_failed_event_attributes",
    failed_attrs=history_pb2.SignalExternalWorkflowExecutionFailedEventAttributes,
    done_field="external_workflow_execution_signaled_event_attributes",
    done_attrs=lambda iid, s, execution: history_pb2.ExternalWorkflowExecutionSignaledEventAttributes(
        initiated_event_id=iid, domain=s["domain"], workflow_execution=execution, control=s["control"]
    ),
)
_CANCEL = _ExternalKind(
    initiated_field="request_cancel_external_workflow_execution_initiated_event_attributes",
    entry=external_cancel_entry,
    pending="external_cancels",
    map_kind=MAP_CANCEL,
    transfer=codec.TRANSFER_CANCEL,
    unknown_cause=C.CANCEL_EXTERNAL_WORKFLOW_EXECUTION_FAILED_CAUSE_UNKNOWN_EXTERNAL_WORKFLOW_EXECUTION,
    completed_cause=C.CANCEL_EXTERNAL_WORKFLOW_EXECUTION_FAILED_CAUSE_WORKFLOW_ALREADY_COMPLETED,
    failed_field="request_cancel_external_workflow_execution_failed_event_attributes",
    failed_attrs=history_pb2.RequestCancelExternalWorkflowExecutionFailedEventAttributes,
    done_field="external_workflow_execution_cancel_requested_event_attributes",
    # (the cancel-requested event has no control field in the API)
    done_attrs=lambda iid, r, execution: history_pb2.ExternalWorkflowExecutionCancelRequestedEventAttributes(
        initiated_event_id=iid, domain=r["domain"], workflow_execution=execution
    ),
)


class Children:
    def __init__(self, engine: HistoryEngine) -> None:
        self.engine = engine

    def _domain(self, name: str, bad: int) -> Any:
        for entry in self.engine.domains.entries():
            if entry.name == name:
                return entry
        raise DecisionFailed(bad, f"Domain {name!r} does not exist.")

    # --- decisions ---------------------------------------------------------------------

    def start_child(
        self, ctx: _Context, attrs: decision_pb2.StartChildWorkflowExecutionDecisionAttributes
    ) -> None:
        bad = C.DECISION_TASK_FAILED_CAUSE_BAD_START_CHILD_EXECUTION_ATTRIBUTES
        ms, mut = ctx.ms, ctx.mut
        if not attrs.workflow_id:
            raise DecisionFailed(bad, "Required field WorkflowID is not set on decision.")
        if not attrs.workflow_type.name:
            raise DecisionFailed(bad, "Required field WorkflowType is not set on decision.")
        if core.dur_ns(attrs.execution_start_to_close_timeout) <= 0:
            raise DecisionFailed(bad, "A valid ExecutionStartToCloseTimeout is not set on decision.")
        if core.dur_ns(attrs.task_start_to_close_timeout) < 0:
            raise DecisionFailed(bad, "A valid TaskStartToCloseTimeout may not be negative.")
        if attrs.cron_schedule:
            try:
                cron.parse_cron(attrs.cron_schedule)
            except cron.CronError as e:
                raise DecisionFailed(bad, str(e)) from None
        domain_name = attrs.domain or ms.domain_name
        target = self._domain(domain_name, bad)
        task_list = attrs.task_list.name or ms.task_list
        event_attrs = history_pb2.StartChildWorkflowExecutionInitiatedEventAttributes(
            domain=domain_name,
            workflow_id=attrs.workflow_id,
            workflow_type=attrs.workflow_type,
            input=attrs.input,
            execution_start_to_close_timeout=attrs.execution_start_to_close_timeout,
            task_start_to_close_timeout=attrs.task_start_to_close_timeout,
            parent_close_policy=attrs.parent_close_policy,
            control=attrs.control,
            decision_task_completed_event_id=ctx.completed_id,
            workflow_id_reuse_policy=attrs.workflow_id_reuse_policy,
            cron_schedule=attrs.cron_schedule,
        )
        event_attrs.task_list.name = task_list
        event_attrs.task_list.kind = 1  # type: ignore[assignment]  # NORMAL
        for name in ("retry_policy", "header", "memo", "search_attributes"):
            if attrs.HasField(name):
                getattr(event_attrs, name).CopyFrom(getattr(attrs, name))
        event = ms.add_event(mut, start_child_workflow_execution_initiated_event_attributes=event_attrs)
        ms.children[event.event_id] = child_entry(event_attrs, target.id, ctx.identity)
        ms.touch_map(mut, MAP_CHILD, event.event_id)
        mut.transfer.append((codec.TRANSFER_START_CHILD, codec.pack(event.event_id)))

    def signal_external(
        self, ctx: _Context, attrs: decision_pb2.SignalExternalWorkflowExecutionDecisionAttributes
    ) -> None:
        bad = C.DECISION_TASK_FAILED_CAUSE_BAD_SIGNAL_WORKFLOW_EXECUTION_ATTRIBUTES
        if not attrs.workflow_execution.workflow_id:
            raise DecisionFailed(bad, "WorkflowId is not set on decision.")
        if not attrs.signal_name:
            raise DecisionFailed(bad, "SignalName is not set on decision.")
        domain_name = attrs.domain or ctx.ms.domain_name
        target = self._domain(domain_name, bad)
        initiated = history_pb2.SignalExternalWorkflowExecutionInitiatedEventAttributes(
            decision_task_completed_event_id=ctx.completed_id,
            domain=domain_name,
            workflow_execution=attrs.workflow_execution,
            signal_name=attrs.signal_name,
            input=attrs.input,
            control=attrs.control,
            child_workflow_only=attrs.child_workflow_only,
        )
        self._initiate_external(ctx, _SIGNAL, initiated, target.id)

    def request_cancel_external(
        self, ctx: _Context, attrs: decision_pb2.RequestCancelExternalWorkflowExecutionDecisionAttributes
    ) -> None:
        bad = C.DECISION_TASK_FAILED_CAUSE_BAD_REQUEST_CANCEL_EXTERNAL_WORKFLOW_EXECUTION_ATTRIBUTES
        if not attrs.workflow_execution.workflow_id:
            raise DecisionFailed(bad, "WorkflowId is not set on decision.")
        domain_name = attrs.domain or ctx.ms.domain_name
        target = self._domain(domain_name, bad)
        initiated = history_pb2.RequestCancelExternalWorkflowExecutionInitiatedEventAttributes(
            decision_task_completed_event_id=ctx.completed_id,
            domain=domain_name,
            workflow_execution=attrs.workflow_execution,
            control=attrs.control,
            child_workflow_only=attrs.child_workflow_only,
        )
        self._initiate_external(ctx, _CANCEL, initiated, target.id)

    @staticmethod
    def _initiate_external(ctx: _Context, kind: _ExternalKind, initiated: Any, target_domain_id: str) -> None:
        """Write the Initiated event, its pending entry and the transfer task that delivers it,
        all in the decision's transaction."""
        event = ctx.ms.add_event(ctx.mut, **{kind.initiated_field: initiated})
        getattr(ctx.ms, kind.pending)[event.event_id] = kind.entry(
            getattr(event, kind.initiated_field), target_domain_id
        )
        ctx.ms.touch_map(ctx.mut, kind.map_kind, event.event_id)
        ctx.mut.transfer.append((kind.transfer, codec.pack(event.event_id)))

    # --- transfer executors --------------------------------------------------------------

    async def execute_start_child(self, task: TransferTask, done: Callable[[], None]) -> None:
        engine = self.engine
        key = (task.domain_id, task.workflow_id, task.run_id)
        (iid,) = codec.unpack(task.data)
        parent = await engine.load_committed(key)
        c = parent.children.get(iid) if parent.is_open() else None
        if c is None or c["started_id"] != EMPTY:
            done()
            return
        domain = await engine.domains.get_by_id(c["domain_id"])
        request = service_workflow_pb2.StartWorkflowExecutionRequest.FromString(c["request"])
        link = (parent.domain_id, parent.domain_name, parent.workflow_id, parent.run_id, iid)
        try:
            run_id = await engine._start(domain, request, None, parent=link)
        except (errors.WorkflowExecutionAlreadyStartedError, errors.BadRequestError):
            await self._record(key, lambda ms, mut: self._child_start_failed(ms, mut, iid))
            done()
            return
        await self._record(key, lambda ms, mut: self._child_started(ms, mut, iid, run_id))
        done()

    async def _record(self, key: tuple[str, str, str], fn: Callable[[Any, Any], None]) -> None:
        try:
            await self.engine.transition(key, fn)
        except (errors.EntityNotExistsError, errors.WorkflowExecutionAlreadyCompletedError):
            pass

    def _child_started(self, ms: Any, mut: Any, iid: int, run_id: str) -> None:
        c = ms.children.get(iid) if ms.is_open() else None
        if c is None or c["started_id"] != EMPTY:
            return
        request = service_workflow_pb2.StartWorkflowExecutionRequest.FromString(c["request"])
        event = ms.add_async_event(
            mut,
            child_workflow_execution_started_event_attributes=history_pb2.ChildWorkflowExecutionStartedEventAttributes(
                domain=c["domain"],
                workflow_execution=_execution(c["workflow_id"], run_id),
                workflow_type=common_pb2.WorkflowType(name=c["workflow_type"]),
                initiated_event_id=iid,
                header=request.header,
            ),
        )
        c["run_id"] = run_id
        c["started_id"] = event.event_id
        ms.touch_map(mut, MAP_CHILD, iid)
        self.engine.schedule_decision(ms, mut)

    def _child_start_failed(self, ms: Any, mut: Any, iid: int) -> None:
        c = ms.children.get(iid) if ms.is_open() else None
        if c is None or c["started_id"] != EMPTY:
            return
        ms.add_async_event(
            mut,
            start_child_workflow_execution_failed_event_attributes=(
                history_pb2.StartChildWorkflowExecutionFailedEventAttributes(
                    domain=c["domain"],
                    workflow_id=c["workflow_id"],
                    workflow_type=common_pb2.WorkflowType(name=c["workflow_type"]),
                    cause=C.CHILD_WORKFLOW_EXECUTION_FAILED_CAUSE_WORKFLOW_ALREADY_RUNNING,
                    control=c["control"],
                    initiated_event_id=iid,
                    decision_task_completed_event_id=c["dtc_id"],
                )
            ),
        )
        del ms.children[iid]
        ms.touch_map(mut, MAP_CHILD, iid)
        self.engine.schedule_decision(ms, mut)

    async def execute_signal(self, task: TransferTask, done: Callable[[], None]) -> None:
        engine = self.engine

        async def send(target: RunKey, s: dict[str, Any], source: Any, iid: int) -> None:
            await engine._signal(
                target, s["signal_name"], common_pb2.Payload(data=s["input"]), source.identity, s["request_id"],
                s["control"],
            )  # fmt: skip

        await self._execute_external(task, done, _SIGNAL, send)

    async def execute_cancel(self, task: TransferTask, done: Callable[[], None]) -> None:
        engine = self.engine

        async def send(target: RunKey, r: dict[str, Any], source: Any, iid: int) -> None:
            external = workflow_pb2.ExternalExecutionInfo(
                workflow_execution=_execution(source.workflow_id, source.run_id), initiated_id=iid
            )
            try:
                await engine._request_cancel(target, r["request_id"], source.identity, "", external)
            except errors.CancellationAlreadyRequestedError:
                pass  # requested before (e.g. this task ran already): the request is delivered

        await self._execute_external(task, done, _CANCEL, send)

    async def _execute_external(
        self,
        task: TransferTask,
        done: Callable[[], None],
        kind: _ExternalKind,
        send: Callable[[RunKey, dict[str, Any], Any, int], Awaitable[None]],
    ) -> None:
        """Act on the target run of a signal or cancel request, then record the outcome
        (delivered, or failed with a cause) in the source run and drop its pending entry."""
        engine = self.engine
        key = (task.domain_id, task.workflow_id, task.run_id)
        (iid,) = codec.unpack(task.data)
        source = await engine.load_committed(key)
        e = getattr(source, kind.pending).get(iid) if source.is_open() else None
        if e is None:
            done()
            return
        cause = 0
        run_id = e["run_id"]
        try:
            target = await engine.resolve_run(e["domain_id"], _execution(e["workflow_id"], e["run_id"]))
            run_id = target[2]
            if e["child_only"]:
                await self._check_child_of(target, source)
            await send(target, e, source, iid)
        except errors.EntityNotExistsError:
            cause = kind.unknown_cause
        except errors.WorkflowExecutionAlreadyCompletedError:
            cause = kind.completed_cause

        def record(ms: Any, mut: Any) -> None:
            pending = getattr(ms, kind.pending)
            e = pending.get(iid) if ms.is_open() else None
            if e is None:
                return
            execution = _execution(e["workflow_id"], run_id)
            if cause:
                failed = kind.failed_attrs(
                    cause=cause, decision_task_completed_event_id=e["dtc_id"], domain=e["domain"],
                    workflow_execution=execution, initiated_event_id=iid, control=e["control"],
                )  # fmt: skip
                ms.add_async_event(mut, **{kind.failed_field: failed})
            else:
                ms.add_async_event(mut, **{kind.done_field: kind.done_attrs(iid, e, execution)})
            del pending[iid]
            ms.touch_map(mut, kind.map_kind, iid)
            self.engine.schedule_decision(ms, mut)

        await self._record(key, record)
        done()

    async def _check_child_of(self, target: tuple[str, str, str], source: Any) -> None:
        """child_workflow_only: the target run must be a child of the source run."""
        tms = await self.engine.load_committed(target)
        if tms.parent is None or tms.parent[3] != source.run_id:
            raise errors.EntityNotExistsError("the target workflow is not a child of this workflow")

    # --- a run closed: tell its parent, apply its parent close policy ---------------------

    async def execute_close(self, task: TransferTask, done: Callable[[], None]) -> None:
        engine = self.engine
        key = (task.domain_id, task.workflow_id, task.run_id)
        ms = await engine.load_committed(key)
        if ms.is_open():
            done()
            return
        if ms.parent is not None and ms.close_status != CloseStatus.CONTINUED_AS_NEW:
            events = await engine.read_events(ms, ms.close_event_id, ms.close_event_id + 1)
            if events:
                p_domain_id, _, p_workflow_id, p_run_id, iid = ms.parent
                close_event = events[0]
                await self._record(
                    (p_domain_id, p_workflow_id, p_run_id),
                    lambda pms, mut: self._child_closed(pms, mut, iid, ms, close_event),
                )
        for c in list(ms.children.values()):
            if c["policy"] in (C.PARENT_CLOSE_POLICY_TERMINATE, C.PARENT_CLOSE_POLICY_REQUEST_CANCEL):
                await self._apply_parent_close_policy(ms, c)
        done()

    def _child_closed(self, pms: Any, mut: Any, iid: int, child: Any, close_event: Any) -> None:
        c = pms.children.get(iid) if pms.is_open() else None
        if c is None:
            return
        if c["started_id"] == EMPTY:  # the child finished before its start was recorded here
            self._child_started(pms, mut, iid, child.first_run_id or child.run_id)
            c = pms.children[iid]
        kind = close_event.WhichOneof("attributes")
        target = _CHILD_OUTCOMES.get(kind)
        if target is None:
            return
        source = getattr(close_event, kind)
        attrs: dict[str, Any] = {
            "domain": c["domain"],
            "workflow_execution": _execution(child.workflow_id, child.run_id),
            "workflow_type": common_pb2.WorkflowType(name=c["workflow_type"]),
            "initiated_event_id": iid,
            "started_event_id": c["started_id"],
        }
        if kind == "workflow_execution_completed_event_attributes":
            attrs["result"] = source.result
        elif kind == "workflow_execution_failed_event_attributes":
            attrs["failure"] = source.failure
        elif kind == "workflow_execution_canceled_event_attributes":
            attrs["details"] = source.details
        elif kind == "workflow_execution_timed_out_event_attributes":
            attrs["timeout_type"] = source.timeout_type
        event_class = getattr(history_pb2, _class_name(target))
        pms.add_async_event(mut, **{target: event_class(**attrs)})
        del pms.children[iid]
        pms.touch_map(mut, MAP_CHILD, iid)
        self.engine.schedule_decision(pms, mut)

    async def _apply_parent_close_policy(self, parent: Any, c: dict[str, Any]) -> None:
        engine = self.engine
        try:
            key = await engine.resolve_run(c["domain_id"], _execution(c["workflow_id"]))
            child = await engine.load_committed(key)
            if child.parent is None or child.parent[3] != parent.run_id or not child.is_open():
                return
            if c["policy"] == C.PARENT_CLOSE_POLICY_TERMINATE:
                await engine._terminate(key, "by parent close policy", b"", "cadence-history")
            else:
                await engine._request_cancel(
                    key, f"parent-close-{parent.run_id}", "cadence-history", "by parent close policy", None
                )
        except (
            errors.EntityNotExistsError,
            errors.WorkflowExecutionAlreadyCompletedError,
            errors.CancellationAlreadyRequestedError,
        ):
            pass


def _class_name(field: str) -> str:
    """'child_workflow_execution_completed_event_attributes' -> 'ChildWorkflowExecutionCompletedEventAttributes'."""
    return "".join(part.capitalize() for part in field.split("_"))
