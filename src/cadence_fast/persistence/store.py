"""The storage contract (DESIGN §6): what every adapter provides.

Every operation is async and fails only with the typed errors of
`cadence_fast.persistence.errors`. "Atomic" means one database transaction (SQL) or
one conditional batch on the shard's partition (Cassandra). The conformance kit
(`cadence_fast.persistence.testing`) is this contract made executable.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from typing import ClassVar

from cadence_fast.persistence.records import (
    CreateWorkflow,
    CurrentExecutionRecord,
    DomainRecord,
    ExecutionRecord,
    HistoryBatch,
    ShardRecord,
    TaskListRecord,
    TaskListTask,
    TimerTask,
    TransferTask,
    UpdateWorkflow,
    VisibilityRecord,
)
from cadence_fast.persistence.visibility_query import VisibilityQuery


class Store(abc.ABC):
    """One open connection (or pool) to one database."""

    #: URL schemes this adapter serves, e.g. ("sqlite",).
    schemes: ClassVar[tuple[str, ...]] = ()
    #: The schema version this code writes and expects.
    schema_version_expected: ClassVar[int] = 1
    #: Create the schema on first open (the embedded SQLite default does; server
    #: databases are set up with `cadence-fast schema setup`).
    auto_create_schema: ClassVar[bool] = False

    def __init__(self, url: str) -> None:
        self.url = url

    # --- lifecycle and schema -------------------------------------------------------

    @abc.abstractmethod
    async def open(self, *, create_schema: bool = False) -> None:
        """Connect. With create_schema, set up or migrate the schema first.

        Without it, raise SchemaError if the schema is missing, outdated or newer than
        `schema_version_expected`, naming the command that fixes it.
        """

    @abc.abstractmethod
    async def close(self) -> None:
        """Finish in-flight writes and release every connection."""

    @abc.abstractmethod
    async def schema_version(self) -> int | None:
        """The version recorded in the database, None if no schema is there.

        Works on a store that is not open (`cadence-fast schema version` calls it so).
        """

    @abc.abstractmethod
    async def setup_schema(self) -> int:
        """Create or migrate the schema (idempotent); return the version now in place.

        Works on a store that is not open (`cadence-fast schema setup` calls it so) and
        creates the database / keyspace itself where the user may.
        """

    # --- domains --------------------------------------------------------------------

    @abc.abstractmethod
    async def create_domain(self, domain: DomainRecord) -> int:
        """Insert; AlreadyExists if the name or id is taken. Returns the new metadata version."""

    @abc.abstractmethod
    async def get_domain(self, *, domain_id: str | None = None, name: str | None = None) -> DomainRecord:
        """By id or by name; NotFound if absent."""

    @abc.abstractmethod
    async def update_domain(self, domain: DomainRecord) -> int:
        """Replace status and data of an existing domain (NotFound otherwise); bumps the metadata version."""

    @abc.abstractmethod
    async def delete_domain(self, domain_id: str) -> None:
        """Remove the domain row (NotFound if absent); bumps the metadata version."""

    @abc.abstractmethod
    async def list_domains(
        self, page_size: int, next_page_token: bytes | None
    ) -> tuple[list[DomainRecord], bytes | None]:
        """Domains ordered by name; a None token means the last page."""

    @abc.abstractmethod
    async def get_metadata_version(self) -> int:
        """The domain metadata version: bumped by every domain write. Caches poll it."""

    # --- shards ---------------------------------------------------------------------

    @abc.abstractmethod
    async def get_or_create_shard(self, shard_id: int) -> ShardRecord:
        """The shard row; created with range_id 0 if absent."""

    @abc.abstractmethod
    async def update_shard(self, shard: ShardRecord, previous_range_id: int) -> None:
        """Write the shard row if its stored range_id == previous_range_id, else ShardOwnershipLost."""

    # --- executions -----------------------------------------------------------------

    @abc.abstractmethod
    async def commit(
        self, shard_id: int, range_id: int, ops: Sequence[CreateWorkflow | UpdateWorkflow]
    ) -> list[BaseException | None]:
        """Apply several workflow writes of one shard in one transaction (group commit).

        If the shard's stored range_id != range_id: raise ShardOwnershipLost, write nothing.
        Otherwise each op keeps its own conditions: an op whose condition fails leaves no
        trace and gets its error (ConditionFailed, AlreadyExists) in the result list at
        its index; the others are written. The call returns only after the transaction
        is durable.

        CreateWorkflow: insert the run, its maps, history, tasks, visibility row and the
        current row per its mode. UpdateWorkflow: the run must exist with next_event_id ==
        condition_next_event_id (ConditionFailed otherwise); write the delta.
        """

    @abc.abstractmethod
    async def get_execution(self, shard_id: int, domain_id: str, workflow_id: str, run_id: str) -> ExecutionRecord:
        """The run with all its map rows; NotFound if absent."""

    @abc.abstractmethod
    async def get_current_execution(self, shard_id: int, domain_id: str, workflow_id: str) -> CurrentExecutionRecord:
        """The current-run pointer of a workflow id; NotFound if absent."""

    @abc.abstractmethod
    async def delete_execution(self, shard_id: int, domain_id: str, workflow_id: str, run_id: str) -> None:
        """Remove a closed run: its row, maps and history, and the current row if it names it.

        Idempotent. Queue tasks and visibility rows are left to their own cleanup.
        """

    # --- history --------------------------------------------------------------------

    @abc.abstractmethod
    async def read_history(
        self,
        shard_id: int,
        domain_id: str,
        workflow_id: str,
        run_id: str,
        min_event_id: int,
        max_event_id: int,
        page_size: int,
        next_page_token: bytes | None,
    ) -> tuple[list[HistoryBatch], bytes | None]:
        """Committed batches holding events in [min_event_id, max_event_id), in event order.

        A batch is returned whole if any of its events is in range. At most page_size
        batches per page (0: all); a None token means the last page.
        """

    # --- queues (the outbox) ----------------------------------------------------------

    @abc.abstractmethod
    async def get_transfer_tasks(
        self, shard_id: int, min_task_id: int, max_task_id: int, limit: int
    ) -> list[TransferTask]:
        """Transfer tasks with min_task_id < task_id <= max_task_id, by task id."""

    @abc.abstractmethod
    async def get_timer_tasks(
        self, shard_id: int, min_time: int, min_task_id: int, max_time: int, limit: int
    ) -> list[TimerTask]:
        """Timer tasks with (visibility_time, task_id) >= (min_time, min_task_id) and visibility_time < max_time,
        ordered by (visibility_time, task_id)."""

    @abc.abstractmethod
    async def complete_transfer_task(self, shard_id: int, task_id: int) -> None:
        """Delete one transfer task (idempotent)."""

    @abc.abstractmethod
    async def complete_transfer_tasks(self, shard_id: int, up_to_task_id: int) -> None:
        """Delete every transfer task with task_id <= up_to_task_id."""

    @abc.abstractmethod
    async def complete_timer_task(self, shard_id: int, visibility_time: int, task_id: int) -> None:
        """Delete one timer task (idempotent)."""

    @abc.abstractmethod
    async def complete_timer_tasks(self, shard_id: int, before_time: int) -> None:
        """Delete every timer task with visibility_time < before_time."""

    # --- task lists (matching) --------------------------------------------------------

    @abc.abstractmethod
    async def lease_task_list(self, domain_id: str, name: str, task_type: int, kind: int) -> TaskListRecord:
        """Take ownership: create with range_id 1, or bump range_id by one. Returns the row."""

    @abc.abstractmethod
    async def update_task_list(self, task_list: TaskListRecord) -> None:
        """Write ack level / data if the stored range_id == task_list.range_id, else ConditionFailed."""

    @abc.abstractmethod
    async def list_task_lists(self, domain_id: str) -> list[TaskListRecord]:
        """Every task list row of a domain."""

    @abc.abstractmethod
    async def delete_task_list(self, domain_id: str, name: str, task_type: int, range_id: int) -> None:
        """Remove the row and its tasks if range_id matches, else ConditionFailed."""

    @abc.abstractmethod
    async def create_tasks(
        self, domain_id: str, name: str, task_type: int, range_id: int, tasks: Sequence[TaskListTask]
    ) -> None:
        """Append backlog tasks if the task list's range_id is still range_id, else ConditionFailed."""

    @abc.abstractmethod
    async def get_tasks(
        self, domain_id: str, name: str, task_type: int, min_task_id: int, max_task_id: int, limit: int
    ) -> list[TaskListTask]:
        """Backlog tasks with min_task_id < task_id <= max_task_id, by task id."""

    @abc.abstractmethod
    async def complete_task(self, domain_id: str, name: str, task_type: int, task_id: int) -> None:
        """Delete one backlog task (idempotent)."""

    @abc.abstractmethod
    async def complete_tasks_less_than(self, domain_id: str, name: str, task_type: int, task_id: int) -> int:
        """Delete backlog tasks with task_id <= task_id; return how many went."""

    @abc.abstractmethod
    async def count_tasks(self, domain_id: str, name: str, task_type: int, min_task_id: int) -> int:
        """How many backlog tasks have task_id > min_task_id (the backlog size)."""

    # --- visibility -------------------------------------------------------------------

    @abc.abstractmethod
    async def upsert_visibility(self, record: VisibilityRecord) -> None:
        """Insert or replace the visibility row of (domain_id, run_id)."""

    @abc.abstractmethod
    async def delete_visibility(self, domain_id: str, run_id: str) -> None:
        """Remove a visibility row (retention)."""

    @abc.abstractmethod
    async def list_workflows(
        self, domain_id: str, query: VisibilityQuery, page_size: int, next_page_token: bytes | None
    ) -> tuple[list[VisibilityRecord], bytes | None]:
        """Rows matching the query, in its order (default: start_time desc, run_id)."""

    @abc.abstractmethod
    async def count_workflows(self, domain_id: str, query: VisibilityQuery) -> int:
        """How many rows match."""
