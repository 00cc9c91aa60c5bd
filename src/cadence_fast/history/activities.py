"""Activity tasks: recording a start, the worker's responses (by token and by id), heartbeats.

A mixin of HistoryEngine (the public methods stay on the engine, as INTERFACES.md lists
them); every change goes through the engine's `transition`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from cadence.api.v1 import common_pb2, history_pb2, service_worker_pb2

from cadence_fast import errors
from cadence_fast.domain.cache import DomainEntry
from cadence_fast.history import tokens, views
from cadence_fast.history.cache import RunKey
from cadence_fast.history.decisions import STARTED_NO_EVENT
from cadence_fast.history.errors import StaleTaskError
from cadence_fast.matching.task import MatchTask

MutableState = Any
Mutation = Any
EMPTY = 0  # core.EMPTY_EVENT_ID


class ActivityTasks:
    if TYPE_CHECKING:  # provided by HistoryEngine
        _decisions: Any
        load: Any
        resolve_run: Any
        schedule_decision: Any
        transition: Any

    async def record_activity_task_started(
        self, task: MatchTask, request: service_worker_pb2.PollForActivityTaskRequest
    ) -> service_worker_pb2.PollForActivityTaskResponse:
        key = (task.domain_id, task.workflow_id, task.run_id)
        request_id = tokens.request_id()  # not uuid4: perf-findings F6

        def apply(ms: MutableState, mut: Mutation) -> Any:
            a = ms.activities.get(task.scheduled_event_id) if ms.is_open() else None
            if a is None or a.started_id != EMPTY or a.attempt != task.schedule_attempt:
                raise StaleTaskError("activity task is not pending")
            if a.retry_policy:
                # With a retry policy the Started event waits for the final outcome (Cadence).
                a.started_id = STARTED_NO_EVENT
            else:
                event = ms.new_async_event(mut)  # attributes filled in place (perf-findings F7)
                started = event.activity_task_started_event_attributes
                started.scheduled_event_id = a.schedule_id
                started.identity = request.identity
                started.request_id = request_id
                started.attempt = a.attempt
                a.started_id = event.event_id
            a.started_time = mut.now
            a.request_id = request_id
            a.started_identity = request.identity
            a.last_heartbeat_time = 0
            ms.touch_activity(mut, a)
            self._decisions.activity_start_timers(ms, mut, a)
            return views.activity_task_response(ms, a)

        try:
            return await self.transition(key, apply)
        except errors.EntityNotExistsError:
            raise StaleTaskError("run not found") from None

    def _started_activity(self, ms: MutableState, schedule_id: int, attempt: int | None) -> Any:
        a = ms.activities.get(schedule_id) if ms.is_open() else None
        if a is None or a.started_id == EMPTY or (attempt is not None and a.attempt != attempt):
            raise errors.EntityNotExistsError("Activity task not found.")
        return a

    async def _activity_by_token(self, task_token: bytes) -> tuple[RunKey, int, int | None]:
        token = tokens.decode(task_token)
        if token.kind != tokens.KIND_ACTIVITY:
            raise errors.BadRequestError("task_token is not an activity task token.")
        return (token.domain_id, token.workflow_id, token.run_id), token.schedule_id, token.attempt

    async def _activity_by_id(
        self, domain: DomainEntry, execution: common_pb2.WorkflowExecution, activity_id: str
    ) -> tuple[RunKey, int, int | None]:
        key = await self.resolve_run(domain.id, execution)
        ms = await self.load(key)
        schedule_id = ms.activity_ids.get(activity_id)
        if schedule_id is None:
            raise errors.EntityNotExistsError(f"Activity task not found: activity_id {activity_id!r}.")
        return key, schedule_id, None

    async def _complete_activity(self, key: RunKey, schedule_id: int, attempt: int | None, result: bytes,
                                 identity: str) -> None:  # fmt: skip
        def apply(ms: MutableState, mut: Mutation) -> None:
            a = self._started_activity(ms, schedule_id, attempt)
            self._decisions.write_deferred_started(ms, mut, a)
            attrs = ms.new_async_event(mut).activity_task_completed_event_attributes
            attrs.scheduled_event_id = schedule_id
            attrs.started_event_id = a.started_id
            attrs.identity = identity
            attrs.result.data = result
            ms.delete_activity(mut, schedule_id)
            self.schedule_decision(ms, mut)

        await self.transition(key, apply)

    async def _fail_activity(self, key: RunKey, schedule_id: int, attempt: int | None,
                             failure: common_pb2.Failure, details: bytes | None, identity: str) -> None:  # fmt: skip
        def apply(ms: MutableState, mut: Mutation) -> None:
            a = self._started_activity(ms, schedule_id, attempt)
            if details is not None:
                a.details = details
            if self._decisions.retry_activity(ms, mut, a, failure.reason, failure.details):
                return
            self._decisions.write_deferred_started(ms, mut, a)
            attrs = history_pb2.ActivityTaskFailedEventAttributes(
                failure=failure,
                scheduled_event_id=schedule_id,
                started_event_id=a.started_id,
                identity=identity,
            )
            ms.add_async_event(mut, activity_task_failed_event_attributes=attrs)
            ms.delete_activity(mut, schedule_id)
            self.schedule_decision(ms, mut)

        await self.transition(key, apply)

    async def _cancel_activity(self, key: RunKey, schedule_id: int, attempt: int | None, details: bytes,
                               identity: str) -> None:  # fmt: skip
        def apply(ms: MutableState, mut: Mutation) -> None:
            a = self._started_activity(ms, schedule_id, attempt)
            self._decisions.write_deferred_started(ms, mut, a)
            attrs = history_pb2.ActivityTaskCanceledEventAttributes(
                latest_cancel_requested_event_id=a.cancel_request_id, scheduled_event_id=schedule_id,
                started_event_id=a.started_id, identity=identity,
            )  # fmt: skip
            attrs.details.data = details
            ms.add_async_event(mut, activity_task_canceled_event_attributes=attrs)
            ms.delete_activity(mut, schedule_id)
            self.schedule_decision(ms, mut)

        await self.transition(key, apply)

    async def _heartbeat(self, key: RunKey, schedule_id: int, attempt: int | None, details: bytes,
                         identity: str) -> bool:  # fmt: skip
        def apply(ms: MutableState, mut: Mutation) -> bool:
            a = self._started_activity(ms, schedule_id, attempt)
            a.details = details
            a.last_heartbeat_time = mut.now
            a.last_worker_identity = identity
            ms.touch_activity(mut, a)
            return bool(a.cancel_requested)

        return await self.transition(key, apply)

    async def respond_activity_task_completed(
        self, request: service_worker_pb2.RespondActivityTaskCompletedRequest
    ) -> service_worker_pb2.RespondActivityTaskCompletedResponse:
        key, sid, attempt = await self._activity_by_token(request.task_token)
        await self._complete_activity(key, sid, attempt, request.result.data, request.identity)
        return service_worker_pb2.RespondActivityTaskCompletedResponse()

    async def respond_activity_task_completed_by_id(
        self,
        domain: DomainEntry,
        request: service_worker_pb2.RespondActivityTaskCompletedByIDRequest,
    ) -> service_worker_pb2.RespondActivityTaskCompletedByIDResponse:
        key, sid, attempt = await self._activity_by_id(
            domain, request.workflow_execution, request.activity_id
        )
        await self._complete_activity(key, sid, attempt, request.result.data, request.identity)
        return service_worker_pb2.RespondActivityTaskCompletedByIDResponse()

    async def respond_activity_task_failed(
        self, request: service_worker_pb2.RespondActivityTaskFailedRequest
    ) -> service_worker_pb2.RespondActivityTaskFailedResponse:
        key, sid, attempt = await self._activity_by_token(request.task_token)
        details = request.heartbeat_details.data if request.HasField("heartbeat_details") else None
        await self._fail_activity(key, sid, attempt, request.failure, details, request.identity)
        return service_worker_pb2.RespondActivityTaskFailedResponse()

    async def respond_activity_task_failed_by_id(
        self,
        domain: DomainEntry,
        request: service_worker_pb2.RespondActivityTaskFailedByIDRequest,
    ) -> service_worker_pb2.RespondActivityTaskFailedByIDResponse:
        key, sid, attempt = await self._activity_by_id(
            domain, request.workflow_execution, request.activity_id
        )
        details = request.heartbeat_details.data if request.HasField("heartbeat_details") else None
        await self._fail_activity(key, sid, attempt, request.failure, details, request.identity)
        return service_worker_pb2.RespondActivityTaskFailedByIDResponse()

    async def respond_activity_task_canceled(
        self, request: service_worker_pb2.RespondActivityTaskCanceledRequest
    ) -> service_worker_pb2.RespondActivityTaskCanceledResponse:
        key, sid, attempt = await self._activity_by_token(request.task_token)
        await self._cancel_activity(key, sid, attempt, request.details.data, request.identity)
        return service_worker_pb2.RespondActivityTaskCanceledResponse()

    async def respond_activity_task_canceled_by_id(
        self,
        domain: DomainEntry,
        request: service_worker_pb2.RespondActivityTaskCanceledByIDRequest,
    ) -> service_worker_pb2.RespondActivityTaskCanceledByIDResponse:
        key, sid, attempt = await self._activity_by_id(
            domain, request.workflow_execution, request.activity_id
        )
        await self._cancel_activity(key, sid, attempt, request.details.data, request.identity)
        return service_worker_pb2.RespondActivityTaskCanceledByIDResponse()

    async def record_activity_task_heartbeat(
        self, request: service_worker_pb2.RecordActivityTaskHeartbeatRequest
    ) -> service_worker_pb2.RecordActivityTaskHeartbeatResponse:
        key, sid, attempt = await self._activity_by_token(request.task_token)
        cancel = await self._heartbeat(key, sid, attempt, request.details.data, request.identity)
        return service_worker_pb2.RecordActivityTaskHeartbeatResponse(cancel_requested=cancel)

    async def record_activity_task_heartbeat_by_id(
        self,
        domain: DomainEntry,
        request: service_worker_pb2.RecordActivityTaskHeartbeatByIDRequest,
    ) -> service_worker_pb2.RecordActivityTaskHeartbeatByIDResponse:
        key, sid, attempt = await self._activity_by_id(
            domain, request.workflow_execution, request.activity_id
        )
        cancel = await self._heartbeat(key, sid, attempt, request.details.data, request.identity)
        return service_worker_pb2.RecordActivityTaskHeartbeatByIDResponse(cancel_requested=cancel)
