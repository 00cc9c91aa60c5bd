"""Shared helpers of the matching tests: a real SQLite store file, no gRPC, no mocks."""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from cadence_fast.matching.engine import MatchingEngine, MatchTask
from cadence_fast.persistence import create_store
from cadence_fast.persistence.records import TaskListType
from cadence_fast.persistence.store import Store

DOMAIN = "3f1c0c56-0000-4000-8000-00000000d0d0"


@contextlib.asynccontextmanager
async def open_store(path: Path) -> AsyncIterator[Store]:
    store = create_store(f"sqlite:///{path}")
    await store.open(create_schema=True)
    try:
        yield store
    finally:
        await store.close()


@contextlib.asynccontextmanager
async def running_engine(store: Store, **kw: Any) -> AsyncIterator[MatchingEngine]:
    engine = MatchingEngine(store, **kw)
    await engine.start()
    try:
        yield engine
    finally:
        await engine.stop()


def new_task_list() -> str:
    return f"tl-{uuid.uuid4().hex[:8]}"


class DoneCounter:
    """An on_done callback that counts its calls."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self) -> None:
        self.calls += 1


def make_task(
    task_list: str,
    event_id: int,
    *,
    task_type: int = TaskListType.DECISION,
    on_done: Callable[[], None] | None = None,
    expiry_in: float | None = None,
    workflow_id: str = "wf",
    query: object | None = None,
    kind: int = 1,
) -> MatchTask:
    now = time.time_ns()
    return MatchTask(
        domain_id=DOMAIN,
        workflow_id=workflow_id,
        run_id="run-1",
        scheduled_event_id=event_id,
        task_list=task_list,
        task_type=task_type,
        kind=kind,
        schedule_attempt=0,
        created_time=now,
        expiry_time=0 if expiry_in is None else now + int(expiry_in * 1e9),
        on_done=on_done,
        query=query,
    )
