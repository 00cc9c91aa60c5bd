"""One store transaction per adapter: SQLite file, PostgreSQL and MariaDB (plugins, when installed).

The write of a typical transition (an activity completed: a 2-event history batch, one
activity map row, the encoded info, one transfer and one timer task) through
`Store.commit`, durable on return: SQLite in WAL with synchronous FULL (our default),
the servers with their own default durability. `x16` commits 16 such updates of 16 runs
in ONE transaction, as the shard's group committer does under load; compare its time per
op with the single op to see what grouping buys on each adapter. Two more groups of 16:
one whose 8th update is stale (its ConditionFailed must cost the others nothing: no
savepoints on the SQL servers), and 16 workflow starts (creates).
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support import (
    create_mysql_database,
    create_pg_database,
    drop_mysql_database,
    drop_pg_database,
    run,
)

from cadence_fast.persistence import create_store
from cadence_fast.persistence.records import (
    CloseStatus,
    HistoryBatch,
    MapKind,
    TimerTask,
    TransferTask,
    UpdateWorkflow,
    WorkflowState,
)
from cadence_fast.persistence.registry import adapters, scheme_of
from cadence_fast.persistence.store import Store
from cadence_fast.persistence.testing.factories import create_op, owned_shard

ADAPTERS = ("sqlite", "postgresql", "mysql")
GROUP = 16
INFO = os.urandom(800)
ACTIVITY_ROW = os.urandom(400)
EVENTS = os.urandom(600)


class Bench:
    """An opened store, an owned shard, runs to update and the task-id counter."""

    def __init__(self, store: Store, shard_id: int, range_id: int) -> None:
        self.store, self.shard_id, self.range_id = store, shard_id, range_id
        self.domain_id = str(uuid.uuid4())
        self.next_event: dict[str, int] = {}
        self.task_id = range_id << 20

    async def create_runs(self, n: int) -> list[tuple[str, str]]:
        ops = [create_op(self.domain_id, f"wf-{uuid.uuid4().hex[:10]}") for _ in range(n)]
        assert await self.store.commit(self.shard_id, self.range_id, ops) == [None] * n
        runs = []
        for op in ops:
            s = op.snapshot
            self.next_event[s.run_id] = s.next_event_id
            runs.append((s.workflow_id, s.run_id))
        return runs

    def update(self, workflow_id: str, run_id: str) -> UpdateWorkflow:
        cond = self.next_event[run_id]
        self.next_event[run_id] = cond + 2
        self.task_id += 2
        now = 1_700_000_000 * 1_000_000_000 + self.task_id
        return UpdateWorkflow(
            domain_id=self.domain_id, workflow_id=workflow_id, run_id=run_id, condition_next_event_id=cond,
            next_event_id=cond + 2, state=WorkflowState.RUNNING, close_status=CloseStatus.NONE, info=INFO,
            map_upserts=[(MapKind.ACTIVITY, str(cond), ACTIVITY_ROW)],
            history=[HistoryBatch(cond, cond + 1, EVENTS)],
            transfer_tasks=[TransferTask(self.task_id, 0, self.domain_id, workflow_id, run_id, b"\x80\x05", now)],
            timer_tasks=[TimerTask(now + 10**10, self.task_id + 1, 0, self.domain_id, workflow_id, run_id, b"")],
        )  # fmt: skip

    async def commit(self, ops: list[UpdateWorkflow]) -> None:
        results = await self.store.commit(self.shard_id, self.range_id, ops)
        assert results == [None] * len(ops), results


@pytest.fixture(scope="module", params=ADAPTERS)
def bench(
    request: pytest.FixtureRequest, loop: asyncio.AbstractEventLoop, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Bench]:
    kind = str(request.param)
    drop = None
    if kind == "sqlite":
        url = f"sqlite:///{Path(tmp_path_factory.mktemp('storebench')) / 'cadence.db'}"
    else:
        if kind not in adapters():
            pytest.skip(f"the {kind} adapter plugin is not installed")
        try:
            if kind == "postgresql":
                url, drop = create_pg_database(), drop_pg_database
            else:
                url, drop = create_mysql_database(), drop_mysql_database
        except Exception as e:  # noqa: BLE001 - the database server is not running here
            pytest.skip(f"{kind} server unreachable: {e}")
    assert scheme_of(url) in adapters()
    store = create_store(url)
    run(loop, lambda: store.open(create_schema=True))
    shard_id, range_id = run(loop, lambda: owned_shard(store))
    yield Bench(store, shard_id, range_id)
    run(loop, store.close)
    if drop is not None:
        drop(url)


def test_commit_one_update(benchmark: Any, bench: Bench, loop: asyncio.AbstractEventLoop) -> None:
    benchmark.group = "store: one transaction"
    (wf, rid), = run(loop, lambda: bench.create_runs(1))
    benchmark.pedantic(
        lambda: run(loop, lambda: bench.commit([bench.update(wf, rid)])), rounds=100, iterations=1, warmup_rounds=5
    )


def test_commit_group_of_16(benchmark: Any, bench: Bench, loop: asyncio.AbstractEventLoop) -> None:
    benchmark.group = "store: one transaction"
    runs = run(loop, lambda: bench.create_runs(GROUP))
    benchmark.extra_info["ops_per_transaction"] = GROUP
    benchmark.pedantic(
        lambda: run(loop, lambda: bench.commit([bench.update(wf, rid) for wf, rid in runs])),
        rounds=50, iterations=1, warmup_rounds=3,
    )  # fmt: skip


def test_commit_group_of_16_one_stale(benchmark: Any, bench: Bench, loop: asyncio.AbstractEventLoop) -> None:
    benchmark.group = "store: one transaction"
    runs = run(loop, lambda: bench.create_runs(GROUP))
    benchmark.extra_info["ops_per_transaction"] = GROUP

    async def commit() -> None:
        ops = [bench.update(wf, rid) for wf, rid in runs]
        ops[7].condition_next_event_id -= 1  # someone else wrote the run since: this op fails alone
        bench.next_event[ops[7].run_id] -= 2
        results = await bench.store.commit(bench.shard_id, bench.range_id, ops)
        assert results[:7] == [None] * 7 and results[8:] == [None] * 8 and results[7] is not None, results

    benchmark.pedantic(lambda: run(loop, commit), rounds=50, iterations=1, warmup_rounds=3)


def test_commit_group_of_16_creates(benchmark: Any, bench: Bench, loop: asyncio.AbstractEventLoop) -> None:
    benchmark.group = "store: one transaction"
    benchmark.extra_info["ops_per_transaction"] = GROUP
    benchmark.pedantic(lambda: run(loop, lambda: bench.create_runs(GROUP)), rounds=50, iterations=1, warmup_rounds=3)
