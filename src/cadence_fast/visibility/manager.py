"""Visibility: list, scan and count workflows of a domain; the search attribute registry.

The API layer resolves the domain and hands over either query text (parsed here,
once, into the typed AST) or an AST it built itself (ListOpen/ListClosed filters).
Listing goes to the store, which compiles the AST for its database; the rows come back
as VisibilityRecord and leave as api.v1 WorkflowExecutionInfo.
"""

from __future__ import annotations

import time

from cadence.api.v1 import common_pb2, tasklist_pb2, workflow_pb2
from google.protobuf.timestamp_pb2 import Timestamp

from cadence_fast.config import ServerConfig
from cadence_fast.domain.cache import DomainCache
from cadence_fast.errors import BadRequestError
from cadence_fast.persistence.records import VisibilityRecord
from cadence_fast.persistence.store import Store
from cadence_fast.persistence.visibility_query import VisibilityQuery
from cadence_fast.visibility.query import parse_query
from cadence_fast.visibility.search_attributes import (
    INDEXED_VALUE_TYPES,
    SearchAttributeRegistry,
    encode_search_attributes,
)

#: Page size when a request asks for none (Cadence's frontend.visibilityMaxPageSize).
DEFAULT_PAGE_SIZE = 1000
#: The largest page a request may ask for (Cadence's ES max result window).
MAX_PAGE_SIZE = 10_000


def _timestamp(ns: int) -> Timestamp:
    seconds, nanos = divmod(ns, 1_000_000_000)
    return Timestamp(seconds=seconds, nanos=nanos)


class VisibilityManager:
    def __init__(self, store: Store, config: ServerConfig, domains: DomainCache) -> None:
        self.store = store
        self.config = config
        self.domains = domains
        self.registry = SearchAttributeRegistry.from_config(config)

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass

    # --- queries ---------------------------------------------------------------------------

    def parse(self, text: str) -> VisibilityQuery:
        """Query text -> AST; BadRequestError naming the bad token."""
        return parse_query(text, self.registry)

    @staticmethod
    def page_size(requested: int) -> int:
        if requested <= 0:
            return DEFAULT_PAGE_SIZE
        if requested > MAX_PAGE_SIZE:
            raise BadRequestError(f"page_size {requested} is larger than the allowed {MAX_PAGE_SIZE}")
        return requested

    async def list(
        self, domain_id: str, query: VisibilityQuery, page_size: int, next_page_token: bytes | None
    ) -> tuple[list[workflow_pb2.WorkflowExecutionInfo], bytes]:
        records, token = await self.store.list_workflows(
            domain_id, query, self.page_size(page_size), next_page_token or None
        )
        return [self.execution_info(r) for r in records], token or b""

    async def count(self, domain_id: str, query: VisibilityQuery) -> int:
        # Counting ignores ORDER BY (Cadence accepts it there and ignores it too).
        return await self.store.count_workflows(domain_id, VisibilityQuery(query.where))

    def search_attribute_keys(self) -> dict[str, int]:
        """name -> api.v1 IndexedValueType, for GetSearchAttributes."""
        return {name: INDEXED_VALUE_TYPES[t] for name, t in self.registry.keys().items()}

    # --- rows -> api.v1 ----------------------------------------------------------------------

    def execution_info(self, r: VisibilityRecord) -> workflow_pb2.WorkflowExecutionInfo:
        info = workflow_pb2.WorkflowExecutionInfo(
            workflow_execution=common_pb2.WorkflowExecution(workflow_id=r.workflow_id, run_id=r.run_id),
            type=common_pb2.WorkflowType(name=r.workflow_type),
            start_time=_timestamp(r.start_time),
            history_length=r.history_length,
            task_list=r.task_list,
            task_list_info=tasklist_pb2.TaskList(name=r.task_list, kind=tasklist_pb2.TASK_LIST_KIND_NORMAL),
            is_cron=bool(r.is_cron),
        )
        if r.execution_time:
            info.execution_time.CopyFrom(_timestamp(r.execution_time))
        if r.update_time:
            info.update_time.CopyFrom(_timestamp(r.update_time))
        if r.close_time is not None:
            info.close_time.CopyFrom(_timestamp(r.close_time))
        if r.close_status is not None:
            info.close_status = r.close_status  # type: ignore[assignment]
            # WorkflowExecutionStatus continues the close statuses two places up (COMPLETED = 3).
            info.execution_status = r.close_status + 2  # type: ignore[assignment]
        elif r.execution_time and r.execution_time > time.time_ns():
            # Its first decision waits for a delayed start or a cron / retry backoff.
            info.execution_status = workflow_pb2.WORKFLOW_EXECUTION_STATUS_PENDING
        else:
            info.execution_status = workflow_pb2.WORKFLOW_EXECUTION_STATUS_STARTED
        if r.memo:
            info.memo.ParseFromString(r.memo)
        if r.search_attributes:
            info.search_attributes.CopyFrom(encode_search_attributes(r.search_attributes, self.registry))
        return info
