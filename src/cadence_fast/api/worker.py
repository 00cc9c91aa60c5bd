"""uber.cadence.api.v1.WorkerAPI: the polls and the task responses of workers.

Polls follow INTERFACES.md: long-poll matching until the call's deadline minus a margin,
then let history record the task as started (that is where a stale task is discovered:
it is dropped and the poll goes on); an empty reply (empty task_token) means "no task".
Responses are validated and handed to the engine, which decodes the task token.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import grpc
from cadence.api.v1 import service_worker_pb2 as pb
from cadence.api.v1 import service_worker_pb2_grpc, tasklist_pb2

from cadence_fast import errors
from cadence_fast.api import validation as check
from cadence_fast.api.base import ApiServicer
from cadence_fast.api.workflow import long_poll_timeout, resolve_domain
from cadence_fast.history.errors import StaleTaskError
from cadence_fast.loops import LoopRef
from cadence_fast.persistence.records import TaskListType

if TYPE_CHECKING:
    from cadence_fast.matching.engine import MatchTask
    from cadence_fast.server import Services

#: What history may answer for a task that no longer needs to run: drop it, poll on.
#: (A workflow that closed or vanished since the task was queued is the common case.)
_STALE = (StaleTaskError, errors.EntityNotExistsError, errors.WorkflowExecutionAlreadyCompletedError)

_EMPTY_DECISION = pb.PollForDecisionTaskResponse()
_EMPTY_ACTIVITY = pb.PollForActivityTaskResponse()


class WorkerAPI(ApiServicer, service_worker_pb2_grpc.WorkerAPIServicer):
    service_name = "uber.cadence.api.v1.WorkerAPI"
    # The decision poll reply carries the run's history as its stored bytes (views.DecisionTaskResponse).
    encoded_responses = {"PollForDecisionTask": pb.PollForDecisionTaskRequest}

    def __init__(self, services: Services) -> None:
        self.services = services
        self._blob_limit = services.config.blob_size_limit
        self._loop_ref = LoopRef()  # cadence_fast.loops: the loop without a getpid() per lookup

    # --- polls -----------------------------------------------------------------------

    async def _poll(
        self,
        request: Any,
        context: grpc.aio.ServicerContext,
        task_type: int,
        record: Callable[[MatchTask, Any], Awaitable[Any]],
        empty: Any,
        rate_per_second: float = 0.0,
    ) -> Any:
        check.poll_request(request)
        domain = await resolve_domain(self.services, request.domain)
        matching = self.services.matching
        loop = self._loop_ref.get()
        deadline = loop.time() + long_poll_timeout(context)
        name = request.task_list.name
        kind = request.task_list.kind or tasklist_pb2.TASK_LIST_KIND_NORMAL
        while True:
            left = deadline - loop.time()
            if left <= 0:
                return empty
            task = await matching.poll(
                domain.id, name, task_type, request.identity, left, kind=kind, rate_per_second=rate_per_second
            )
            if task is None:
                return empty
            # Shielded: if the worker goes away mid-call, the engine's transition still
            # runs to its end (a half-cancelled commit is worse than a wasted task).
            recording = loop.create_task(record(task, request))
            try:
                response = await asyncio.shield(recording)
            except asyncio.CancelledError:
                recording.add_done_callback(functools.partial(_settle_abandoned, matching, task))
                raise
            except _STALE:
                matching.ack(task)
                continue
            except BaseException:
                matching.requeue(task)
                raise
            matching.ack(task)
            return response

    async def PollForDecisionTask(
        self, request: pb.PollForDecisionTaskRequest, context: grpc.aio.ServicerContext
    ) -> pb.PollForDecisionTaskResponse:
        return await self._poll(
            request,
            context,
            TaskListType.DECISION,
            self.services.history.record_decision_task_started,
            _EMPTY_DECISION,
        )

    async def PollForActivityTask(
        self, request: pb.PollForActivityTaskRequest, context: grpc.aio.ServicerContext
    ) -> pb.PollForActivityTaskResponse:
        return await self._poll(
            request,
            context,
            TaskListType.ACTIVITY,
            self.services.history.record_activity_task_started,
            _EMPTY_ACTIVITY,
            # The worker's task_list_activities_per_second: matching paces this list.
            request.task_list_metadata.max_tasks_per_second.value,
        )

    # --- decision responses ----------------------------------------------------------

    async def RespondDecisionTaskCompleted(
        self, request: pb.RespondDecisionTaskCompletedRequest, context: grpc.aio.ServicerContext
    ) -> pb.RespondDecisionTaskCompletedResponse:
        check.task_token(request.task_token)
        check.identity(request.identity)
        check.blob(len(request.execution_context), "ExecutionContext", self._blob_limit)
        return await self.services.history.respond_decision_task_completed(request)

    async def RespondDecisionTaskFailed(
        self, request: pb.RespondDecisionTaskFailedRequest, context: grpc.aio.ServicerContext
    ) -> pb.RespondDecisionTaskFailedResponse:
        check.task_token(request.task_token)
        check.identity(request.identity)
        if len(request.details.data) > self._blob_limit:
            # As Go Cadence: the worker's failure report is kept (it is why the decision
            # failed), cut to the limit, rather than refused and lost.
            request.details.data = request.details.data[: self._blob_limit]
        return await self.services.history.respond_decision_task_failed(request)

    # --- activity responses ----------------------------------------------------------
    # Each outcome comes in two forms that differ only in how the activity is named: by the
    # task token of its poll, or (the *ByID calls) by domain, workflow and activity id. The
    # payload checks of an outcome are the same in both forms.

    async def _by_token(
        self, request: Any, check_outcome: Callable[[Any], None], respond: Callable[..., Awaitable[Any]]
    ) -> Any:
        check.task_token(request.task_token)
        check.identity(request.identity)
        check_outcome(request)
        return await respond(request)

    async def _by_id(
        self, request: Any, check_outcome: Callable[[Any], None], respond: Callable[..., Awaitable[Any]]
    ) -> Any:
        check.by_id_request(request)
        check_outcome(request)
        domain = await resolve_domain(self.services, request.domain)
        return await respond(domain, request)

    def _check_completed(self, request: Any) -> None:
        check.payload(request.result, "Result", self._blob_limit)

    def _check_failed(self, request: Any) -> None:
        check.failure(request.failure, self._blob_limit)
        check.payload(request.heartbeat_details, "HeartbeatDetails", self._blob_limit)

    def _check_details(self, request: Any) -> None:
        """Canceled and heartbeat calls carry one `details` payload."""
        check.payload(request.details, "Details", self._blob_limit)

    async def RespondActivityTaskCompleted(
        self, request: pb.RespondActivityTaskCompletedRequest, context: grpc.aio.ServicerContext
    ) -> pb.RespondActivityTaskCompletedResponse:
        history = self.services.history
        return await self._by_token(request, self._check_completed, history.respond_activity_task_completed)

    async def RespondActivityTaskFailed(
        self, request: pb.RespondActivityTaskFailedRequest, context: grpc.aio.ServicerContext
    ) -> pb.RespondActivityTaskFailedResponse:
        history = self.services.history
        return await self._by_token(request, self._check_failed, history.respond_activity_task_failed)

    async def RespondActivityTaskCanceled(
        self, request: pb.RespondActivityTaskCanceledRequest, context: grpc.aio.ServicerContext
    ) -> pb.RespondActivityTaskCanceledResponse:
        history = self.services.history
        return await self._by_token(request, self._check_details, history.respond_activity_task_canceled)

    async def RecordActivityTaskHeartbeat(
        self, request: pb.RecordActivityTaskHeartbeatRequest, context: grpc.aio.ServicerContext
    ) -> pb.RecordActivityTaskHeartbeatResponse:
        history = self.services.history
        return await self._by_token(request, self._check_details, history.record_activity_task_heartbeat)

    async def RespondActivityTaskCompletedByID(
        self, request: pb.RespondActivityTaskCompletedByIDRequest, context: grpc.aio.ServicerContext
    ) -> pb.RespondActivityTaskCompletedByIDResponse:
        history = self.services.history
        return await self._by_id(request, self._check_completed, history.respond_activity_task_completed_by_id)

    async def RespondActivityTaskFailedByID(
        self, request: pb.RespondActivityTaskFailedByIDRequest, context: grpc.aio.ServicerContext
    ) -> pb.RespondActivityTaskFailedByIDResponse:
        history = self.services.history
        return await self._by_id(request, self._check_failed, history.respond_activity_task_failed_by_id)

    async def RespondActivityTaskCanceledByID(
        self, request: pb.RespondActivityTaskCanceledByIDRequest, context: grpc.aio.ServicerContext
    ) -> pb.RespondActivityTaskCanceledByIDResponse:
        history = self.services.history
        return await self._by_id(request, self._check_details, history.respond_activity_task_canceled_by_id)

    async def RecordActivityTaskHeartbeatByID(
        self, request: pb.RecordActivityTaskHeartbeatByIDRequest, context: grpc.aio.ServicerContext
    ) -> pb.RecordActivityTaskHeartbeatByIDResponse:
        history = self.services.history
        return await self._by_id(request, self._check_details, history.record_activity_task_heartbeat_by_id)

    # --- queries and stickiness -------------------------------------------------------

    async def RespondQueryTaskCompleted(
        self, request: pb.RespondQueryTaskCompletedRequest, context: grpc.aio.ServicerContext
    ) -> pb.RespondQueryTaskCompletedResponse:
        check.task_token(request.task_token)
        check.payload(request.result.answer, "QueryResult", self._blob_limit)
        return await self.services.history.respond_query_task_completed(request)

    async def ResetStickyTaskList(
        self, request: pb.ResetStickyTaskListRequest, context: grpc.aio.ServicerContext
    ) -> pb.ResetStickyTaskListResponse:
        check.execution_request(request)
        domain = await resolve_domain(self.services, request.domain)
        return await self.services.history.reset_sticky_task_list(domain, request)

def _settle_abandoned(matching: Any, task: MatchTask, done: asyncio.Future[Any]) -> None:
    """The poll's caller left while history was recording the task as started.

    Recorded (or stale): the task is out of matching's hands; a started decision or
    activity nobody received simply times out and is retried by history. Failed for
    another reason: matching delivers it again."""
    if done.cancelled():
        matching.requeue(task)
        return
    exc = done.exception()
    if exc is None or isinstance(exc, _STALE):
        matching.ack(task)
    else:
        matching.requeue(task)
