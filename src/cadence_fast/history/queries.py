"""Queries (client-contract §4d): a standalone query task on the workflow's task list.

QueryWorkflow hands a query task to a decision poller (sync match only, never
persisted), then waits for RespondQueryTaskCompleted. No events are written. It works
before the first decision completes and on closed runs; with no worker it fails cleanly
before the caller's deadline.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import TYPE_CHECKING, Any

from cadence.api.v1 import (
    common_pb2,
    query_pb2,
    service_worker_pb2,
    service_workflow_pb2,
    tasklist_pb2,
)
from google.protobuf import wrappers_pb2

from cadence_fast import errors
from cadence_fast._core import mutable_state as core
from cadence_fast.domain.cache import DomainEntry
from cadence_fast.history import tokens
from cadence_fast.history.errors import StaleTaskError
from cadence_fast.history.queues import now_ns
from cadence_fast.matching.task import MatchTask
from cadence_fast.persistence.records import CloseStatus, TaskListType

if TYPE_CHECKING:
    from cadence_fast.history.engine import HistoryEngine

#: At most this long waiting for a poller to take the query task.
OFFER_SECONDS = 10.0
#: Kept back from the caller's deadline so the error reaches it in time.
DEADLINE_MARGIN = 0.5


class PendingQuery:
    __slots__ = ("query", "answer", "key")

    def __init__(self, key: tuple[str, str, str], query: query_pb2.WorkflowQuery) -> None:
        self.key = key
        self.query = query
        self.answer: asyncio.Future[query_pb2.WorkflowQueryResult] = (
            asyncio.get_running_loop().create_future()
        )


class Queries:
    def __init__(self, engine: HistoryEngine) -> None:
        self.engine = engine
        self.pending: dict[str, PendingQuery] = {}
        #: Strong queries waiting for a run's decisions, by run: offered in its decision tasks.
        self.attached: dict[Any, dict[str, PendingQuery]] = {}

    async def query(
        self,
        domain: DomainEntry,
        request: service_workflow_pb2.QueryWorkflowRequest,
        timeout: float,  # noqa: ASYNC109
    ) -> service_workflow_pb2.QueryWorkflowResponse:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout - DEADLINE_MARGIN
        key = await self.engine.resolve_run(domain.id, request.workflow_execution)
        ms = await self.engine.load_committed(key)
        query_id = str(uuid.uuid4())
        pending = self.pending[query_id] = PendingQuery(key, request.query)
        try:
            if request.query_consistency_level == query_pb2.QUERY_CONSISTENCY_LEVEL_STRONG:
                # Strong: the answer must reflect every event already recorded, so wait until no
                # decision is pending (the worker then has processed them all), bounded by the
                # deadline. Meanwhile the query rides on the next decision task's `queries` map,
                # as Go Cadence does, for workers that answer there (query_results).
                ms = await self._await_decisions(key, ms, query_id, pending, deadline)
            if pending.answer.done():
                return self._response(pending.answer.result())
            rejected = self._rejected(ms, request.query_reject_condition)
            if rejected is not None:
                return service_workflow_pb2.QueryWorkflowResponse(query_rejected=rejected)
            task = MatchTask(
                domain_id=key[0],
                workflow_id=key[1],
                run_id=key[2],
                scheduled_event_id=0,
                task_list=ms.task_list,
                task_type=TaskListType.DECISION,
                created_time=now_ns(),
                query=query_id,
            )
            offer = min(OFFER_SECONDS, deadline - loop.time())
            if offer <= 0 or not await self.engine.matching.offer_query(task, offer):
                raise errors.QueryFailedError(
                    f"QueryWorkflow failed: no worker polled task list {ms.task_list!r} within {max(offer, 0):.0f}s."
                )
            try:
                result = await asyncio.wait_for(
                    asyncio.shield(pending.answer), max(0.0, deadline - loop.time())
                )
            except TimeoutError:
                raise errors.QueryFailedError(
                    "QueryWorkflow failed: the worker did not answer in time."
                ) from None
        finally:
            self.pending.pop(query_id, None)
        return self._response(result)

    async def _await_decisions(
        self, key: Any, ms: Any, query_id: str, pending: PendingQuery, deadline: float
    ) -> Any:
        """Wait until the run has no pending decision (or the query was answered through one)."""
        loop = asyncio.get_running_loop()
        attached = self.attached.setdefault(key, {})
        attached[query_id] = pending
        try:
            while (
                not pending.answer.done()
                and ms.is_open()
                and ms.has_pending_decision()
                and deadline - loop.time() > OFFER_SECONDS / 10
            ):
                await self.engine.wait_for_change(key, deadline - loop.time() - OFFER_SECONDS / 10)
                ms = await self.engine.load_committed(key)
        finally:
            attached.pop(query_id, None)
            if not attached:
                self.attached.pop(key, None)
        return ms

    @staticmethod
    def _response(result: query_pb2.WorkflowQueryResult) -> service_workflow_pb2.QueryWorkflowResponse:
        if result.result_type == query_pb2.QUERY_RESULT_TYPE_ANSWERED:
            return service_workflow_pb2.QueryWorkflowResponse(query_result=result.answer)
        raise errors.QueryFailedError(result.error_message or "query failed")

    def for_decision(self, key: Any) -> dict[str, query_pb2.WorkflowQuery]:
        """Strong queries waiting on this run: they go out in the decision task's `queries` map."""
        return {qid: p.query for qid, p in self.attached.get(key, {}).items() if not p.answer.done()}

    def answer_from_decision(self, key: Any, results: Any) -> None:
        """`query_results` of an accepted RespondDecisionTaskCompleted answer those queries."""
        attached = self.attached.get(key)
        if not attached:
            return
        for query_id, result in results.items():
            pending = attached.get(query_id)
            if (
                pending is not None
                and not pending.answer.done()
                and result.result_type in (query_pb2.QUERY_RESULT_TYPE_ANSWERED, query_pb2.QUERY_RESULT_TYPE_FAILED)
            ):
                pending.answer.set_result(result)

    @staticmethod
    def _rejected(ms: Any, condition: int) -> query_pb2.QueryRejected | None:
        if ms.is_open():
            return None
        if condition == query_pb2.QUERY_REJECT_CONDITION_NOT_OPEN or (
            condition == query_pb2.QUERY_REJECT_CONDITION_NOT_COMPLETED_CLEANLY
            and ms.close_status != CloseStatus.COMPLETED
        ):
            return query_pb2.QueryRejected(close_status=ms.close_status)
        return None

    async def task_started(
        self, task: MatchTask, request: service_worker_pb2.PollForDecisionTaskRequest
    ) -> service_worker_pb2.PollForDecisionTaskResponse:
        """The poll reply for a query task: the run's history so far plus the query."""
        query_id = str(task.query)
        pending = self.pending.get(query_id)
        if pending is None or pending.answer.done():
            raise StaleTaskError("query is no longer waiting")
        key = pending.key
        async with self.engine.cache.locked(key):
            ms = await self.engine.load(key)
            history = await self.engine.full_history_bytes(ms)
        token = tokens.TaskToken(tokens.KIND_QUERY, key[0], key[1], key[2], 0, 0, "", query_id)
        resp = service_worker_pb2.PollForDecisionTaskResponse(
            task_token=token.encode(),
            workflow_execution=common_pb2.WorkflowExecution(workflow_id=key[1], run_id=key[2]),
            workflow_type=common_pb2.WorkflowType(name=ms.workflow_type),
            previous_started_event_id=wrappers_pb2.Int64Value(value=ms.last_processed_event),
            started_event_id=ms.next_event_id - 1,
            next_event_id=ms.next_event_id,
            query=pending.query,
            workflow_execution_task_list=tasklist_pb2.TaskList(
                name=ms.task_list, kind=tasklist_pb2.TASK_LIST_KIND_NORMAL
            ),
            scheduled_time=core.ts(task.created_time or now_ns()),
            started_time=core.ts(now_ns()),
            total_history_bytes=len(history),
        )
        resp.history.MergeFromString(history)
        return resp

    def completed(
        self, request: service_worker_pb2.RespondQueryTaskCompletedRequest
    ) -> service_worker_pb2.RespondQueryTaskCompletedResponse:
        token = tokens.decode(request.task_token)
        if token.kind != tokens.KIND_QUERY:
            raise errors.BadRequestError("task_token is not a query task token.")
        pending = self.pending.get(token.query_id)
        if pending is None or pending.answer.done():
            raise errors.EntityNotExistsError("Query task not found: it was answered or timed out.")
        if request.result.result_type not in (
            query_pb2.QUERY_RESULT_TYPE_ANSWERED,
            query_pb2.QUERY_RESULT_TYPE_FAILED,
        ):
            raise errors.BadRequestError("QueryResult.result_type must be ANSWERED or FAILED.")
        pending.answer.set_result(request.result)
        return service_worker_pb2.RespondQueryTaskCompletedResponse()
