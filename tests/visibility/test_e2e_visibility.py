"""Visibility end to end: workflows started and run by the official client (a real Worker),
listed, counted and scanned through the VisibilityAPI of a real server process.

Every test runs on SQLite, PostgreSQL and MariaDB/MySQL (a fresh database each, the
real servers of tests/plugins/databases.py).
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import pytest
from cadence import workflow
from cadence.api.v1 import common_pb2, visibility_pb2, workflow_pb2
from cadence.api.v1 import service_visibility_pb2 as pb
from cadence.api.v1 import service_workflow_pb2 as wf_pb
from cadence.api.v1.service_domain_pb2 import RegisterDomainRequest
from cadence.api.v1.service_visibility_pb2_grpc import VisibilityAPIStub
from cadence.client import Client
from cadence.error import CadenceRpcError
from cadence.worker import Registry, Worker

from tests.conftest import ServerProcess, cli_command, sqlite_url
from tests.plugins.databases import (
    create_mysql_database,
    create_pg_database,
    drop_mysql_database,
    drop_pg_database,
)

registry = Registry()
TAG_TIME = datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC)


@registry.workflow(name="VisDone")
class VisDone:
    @workflow.run
    async def run(self, value: str) -> str:
        return value


@registry.workflow(name="VisFail")
class VisFail:
    @workflow.run
    async def run(self, message: str) -> str:
        raise RuntimeError(message)


@registry.workflow(name="VisTagged")
class VisTagged:
    """Upserts search attributes, then waits for a "finish" signal."""

    def __init__(self) -> None:
        self.done = False

    @workflow.signal(name="finish")
    def finish(self) -> None:
        self.done = True

    @workflow.run
    async def run(self, tag: str, n: int) -> str:
        workflow.upsert_search_attributes(
            {"CustomKeywordField": tag, "CustomIntField": n, "Env": "e2e", "CustomDatetimeField": TAG_TIME}
        )
        await workflow.wait_condition(lambda: self.done)
        return tag


@pytest.fixture(
    scope="module",
    params=[
        "sqlite",
        pytest.param("postgres", marks=pytest.mark.postgres),
        pytest.param("mysql", marks=pytest.mark.mysql),
    ],
)
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    """One server per store kind, each on a fresh database, with a custom attribute registered."""
    tmp = tmp_path_factory.mktemp("vise2e")
    config = tmp / "server.toml"
    config.write_text('[search_attributes]\nEnv = "keyword"\n')
    kind = request.param
    if kind == "sqlite":
        store = sqlite_url(tmp / "cadence.db")
    else:
        store = (
            create_pg_database("cadence_vis") if kind == "postgres" else create_mysql_database("cadence_vis")
        )
        setup = subprocess.run(
            [*cli_command(), "schema", "setup", "--store", store], capture_output=True, text=True
        )
        assert setup.returncode == 0, setup.stderr
    proc = ServerProcess(store, extra=["--config", str(config)], log=tmp / "server.log").start()
    try:
        yield proc
    finally:
        proc.kill()
        if kind == "postgres":
            drop_pg_database(store)
        elif kind == "mysql":
            drop_mysql_database(store)


#: A list of executions (named: `Env.list` shadows the builtin in the class's annotations).
Infos = list[workflow_pb2.WorkflowExecutionInfo]


class Env:
    def __init__(self, client: Client, task_list: str) -> None:
        self.client = client
        self.task_list = task_list
        self.vis = VisibilityAPIStub(client._channel)  # the client's own channel and metadata
        self.domain = client.domain

    async def start(self, wf: str, *args: Any, **options: Any) -> common_pb2.WorkflowExecution:
        options.setdefault("task_list", self.task_list)
        options.setdefault("execution_start_to_close_timeout", timedelta(seconds=120))
        options.setdefault("task_start_to_close_timeout", timedelta(seconds=10))
        return await self.client.start_workflow(wf, *args, **options)

    async def list(self, query: str, page_size: int = 1000) -> Infos:
        return await self._all_pages(self.vis.ListWorkflowExecutions, pb.ListWorkflowExecutionsRequest, query, page_size)

    async def scan(self, query: str, page_size: int) -> Infos:
        return await self._all_pages(self.vis.ScanWorkflowExecutions, pb.ScanWorkflowExecutionsRequest, query, page_size)

    async def _all_pages(self, method: Any, request_type: Any, query: str, page_size: int) -> Infos:
        out: Infos = []
        token = b""
        while True:
            request = request_type(domain=self.domain, query=query, page_size=page_size, next_page_token=token)
            resp = await method(request, timeout=30)
            out.extend(resp.executions)
            token = resp.next_page_token
            if not token:
                return out

    async def count(self, query: str) -> int:
        resp = await self.vis.CountWorkflowExecutions(
            pb.CountWorkflowExecutionsRequest(domain=self.domain, query=query), timeout=30
        )
        return resp.count

    async def eventually(self, what: str, check: Callable[[], Awaitable[bool]], within: float = 30) -> None:
        deadline = time.monotonic() + within
        while not await check():
            assert time.monotonic() < deadline, f"not within {within}s: {what}"
            await asyncio.sleep(0.1)


async def _env_setup(server: ServerProcess) -> tuple[Client, str]:
    domain = f"vis-{uuid.uuid4().hex[:10]}"
    client = Client(domain=domain, target=server.address)
    request = RegisterDomainRequest(name=domain)
    request.workflow_execution_retention_period.FromTimedelta(timedelta(days=1))
    await client.domain_stub.RegisterDomain(request, timeout=30)
    return client, f"tl-{uuid.uuid4().hex[:10]}"


def _ids(infos: list[workflow_pb2.WorkflowExecutionInfo]) -> list[str]:
    return [i.workflow_execution.workflow_id for i in infos]


async def test_filters_queries_counts(server: ServerProcess) -> None:
    client, task_list = await _env_setup(server)
    async with client, Worker(client, task_list, registry):
        env = Env(client, task_list)
        prefix = uuid.uuid4().hex[:6]
        done = [
            await env.start("VisDone", f"v{i}", workflow_id=f"{prefix}-done-{i}", memo={"i": i})
            for i in range(4)
        ]
        failed = [await env.start("VisFail", "boom", workflow_id=f"{prefix}-fail-{i}") for i in range(2)]
        tagged = [
            await env.start("VisTagged", f"tag-{i % 2}", i, workflow_id=f"{prefix}-tag-{i}") for i in range(3)
        ]

        async def settled() -> bool:
            return (
                await env.count("CloseStatus = 'COMPLETED'") == 4
                and await env.count("CloseStatus = 'FAILED'") == 2
                and await env.count("CustomIntField >= 0") == 3
            )

        await env.eventually("4 completed, 2 failed, 3 tagged", settled)

        # Query forms over the system attributes.
        assert await env.count("") == 9
        assert await env.count("WorkflowType = 'VisDone'") == 4
        assert await env.count("WorkflowType IN ('VisDone', 'VisFail')") == 6
        assert await env.count("WorkflowType != 'VisDone'") == 5
        assert await env.count("CloseTime = missing") == 3
        assert await env.count("CloseTime != missing AND WorkflowType = 'VisFail'") == 2
        assert await env.count(f"WorkflowID = '{prefix}-done-2'") == 1
        assert await env.count(f"RunID = '{done[1].run_id}'") == 1
        assert await env.count(f"TaskList = '{task_list}'") == 9
        assert await env.count("IsCron = false") == 9
        assert await env.count("HistoryLength > 0 AND CloseStatus = 0") == 4  # Cadence's 0 = COMPLETED
        now = datetime.now(UTC)
        since = (now - timedelta(minutes=10)).isoformat()
        assert await env.count(f"StartTime > '{since}'") == 9
        assert (
            await env.count(f"StartTime BETWEEN '{since}' AND '{now.isoformat()}' AND CloseTime = missing")
            == 3
        )
        assert await env.count(f"StartTime > {time.time_ns()}") == 0
        # Custom search attributes upserted by the workflows.
        assert sorted(_ids(await env.list("CustomKeywordField = 'tag-0'"))) == [
            f"{prefix}-tag-0",
            f"{prefix}-tag-2",
        ]
        assert await env.count("Env = 'e2e' AND CustomIntField BETWEEN 1 AND 2") == 2
        assert await env.count("CustomDatetimeField = '2024-05-06T07:08:09Z'") == 3
        assert await env.count("CustomDatetimeField > '2024-05-06T07:08:09Z'") == 0

        # Listing order: newest start first by default, oldest first when asked.
        listed = _ids(await env.list("", page_size=2))
        started = [e.workflow_id for e in done + failed + tagged]
        assert listed == started[::-1]
        assert _ids(await env.list("ORDER BY StartTime ASC", page_size=4)) == started
        assert sorted(_ids(await env.scan("", page_size=4))) == sorted(started)

        # What a listing carries.
        (info,) = await env.list(f"WorkflowID = '{prefix}-done-3'")
        assert info.type.name == "VisDone"
        assert info.close_status == workflow_pb2.WORKFLOW_EXECUTION_CLOSE_STATUS_COMPLETED
        assert info.close_time.ToNanoseconds() >= info.start_time.ToNanoseconds() > 0
        assert info.history_length > 0
        assert info.task_list == task_list
        assert json.loads(info.memo.fields["i"].data) == 3
        (tag_info,) = await env.list(f"WorkflowID = '{prefix}-tag-1'")
        fields = tag_info.search_attributes.indexed_fields
        assert json.loads(fields["CustomKeywordField"].data) == "tag-1"
        assert json.loads(fields["CustomIntField"].data) == 1
        assert json.loads(fields["Env"].data) == "e2e"
        assert json.loads(fields["CustomDatetimeField"].data) == "2024-05-06T07:08:09Z"
        assert not tag_info.HasField("close_time")

        # ListOpen / ListClosed with their structured filters.
        far = pb.ListOpenWorkflowExecutionsRequest(domain=env.domain)
        far.start_time_filter.earliest_time.FromDatetime(now - timedelta(hours=1))
        far.start_time_filter.latest_time.FromDatetime(now + timedelta(hours=1))
        open_resp = await env.vis.ListOpenWorkflowExecutions(far, timeout=30)
        assert _ids(list(open_resp.executions)) == [e.workflow_id for e in tagged[::-1]]
        by_type = pb.ListClosedWorkflowExecutionsRequest(
            domain=env.domain, type_filter=visibility_pb2.WorkflowTypeFilter(name="VisFail")
        )
        by_type.start_time_filter.CopyFrom(far.start_time_filter)
        assert sorted(
            _ids(list((await env.vis.ListClosedWorkflowExecutions(by_type, timeout=30)).executions))
        ) == sorted(e.workflow_id for e in failed)
        by_status = pb.ListClosedWorkflowExecutionsRequest(
            domain=env.domain,
            status_filter=visibility_pb2.StatusFilter(
                status=workflow_pb2.WORKFLOW_EXECUTION_CLOSE_STATUS_COMPLETED
            ),
        )
        by_status.start_time_filter.CopyFrom(far.start_time_filter)
        closed = list((await env.vis.ListClosedWorkflowExecutions(by_status, timeout=30)).executions)
        assert sorted(_ids(closed)) == sorted(e.workflow_id for e in done)
        assert [c.close_time.ToNanoseconds() for c in closed] == sorted(
            (c.close_time.ToNanoseconds() for c in closed), reverse=True
        )
        by_id = pb.ListClosedWorkflowExecutionsRequest(
            domain=env.domain,
            execution_filter=visibility_pb2.WorkflowExecutionFilter(workflow_id=done[0].workflow_id),
        )
        by_id.start_time_filter.CopyFrom(far.start_time_filter)
        assert _ids(list((await env.vis.ListClosedWorkflowExecutions(by_id, timeout=30)).executions)) == [
            done[0].workflow_id
        ]

        # Closing the tagged ones: a terminate and two signals move them to closed.
        await client.workflow_stub.TerminateWorkflowExecution(
            wf_pb.TerminateWorkflowExecutionRequest(
                domain=env.domain, workflow_execution=tagged[0], reason="test"
            ),
            timeout=30,
        )
        for e in tagged[1:]:
            await client.signal_workflow(e.workflow_id, e.run_id, "finish")

        async def all_closed() -> bool:
            return await env.count("CloseTime = missing") == 0

        await env.eventually("tagged workflows closed", all_closed)
        assert await env.count("CloseStatus = 'TERMINATED'") == 1
        assert await env.count("CloseStatus = 'COMPLETED' AND Env = 'e2e'") == 2
        # Search attributes survive the close.
        assert await env.count("CustomKeywordField = 'tag-0' AND CloseTime != missing") == 2


async def test_paging_stable_under_concurrent_starts_and_closes(server: ServerProcess) -> None:
    client, task_list = await _env_setup(server)
    async with client, Worker(client, task_list, registry):
        env = Env(client, task_list)
        prefix = uuid.uuid4().hex[:6]
        before = [await env.start("VisTagged", "p", i, workflow_id=f"{prefix}-b-{i}") for i in range(24)]

        async def all_started() -> bool:
            return await env.count("WorkflowType = 'VisTagged'") == 24

        await env.eventually("24 started", all_started)

        new: list[common_pb2.WorkflowExecution] = []

        async def churn() -> None:
            # New runs of the same type start (they sort before any page already read)
            # while listed ones close (which changes their close time, not their place).
            for i in range(12):
                new.append(await env.start("VisTagged", "n", i, workflow_id=f"{prefix}-new-{i}"))
                e = before[i * 2]
                await client.signal_workflow(e.workflow_id, e.run_id, "finish")
                await asyncio.sleep(0.01)

        query = "WorkflowType = 'VisTagged'"
        first = await env.vis.ListWorkflowExecutions(
            pb.ListWorkflowExecutionsRequest(domain=env.domain, query=query, page_size=5), timeout=30
        )
        seen = _ids(list(first.executions))
        token = first.next_page_token
        churning = asyncio.create_task(churn())
        pages = 1
        while token:
            await asyncio.sleep(0.05)
            resp = await env.vis.ListWorkflowExecutions(
                pb.ListWorkflowExecutionsRequest(
                    domain=env.domain, query=query, page_size=5, next_page_token=token
                ),
                timeout=30,
            )
            seen.extend(_ids(list(resp.executions)))
            pages += 1
            token = resp.next_page_token
        await churning
        assert pages == 5
        assert len(seen) == len(set(seen)), "a run was listed twice"
        assert seen == [e.workflow_id for e in before[::-1]]

        for e in [*before[1::2], *new]:
            await client.signal_workflow(e.workflow_id, e.run_id, "finish")

        async def closed() -> bool:
            return await env.count("WorkflowType = 'VisTagged' AND CloseTime != missing") == 36

        await env.eventually("all closed", closed)
        assert await env.count("CloseTime = missing") == 0


async def test_bad_queries_over_the_wire(server: ServerProcess) -> None:
    client, task_list = await _env_setup(server)
    async with client:
        env = Env(client, task_list)
        for query, message in [
            ("WorkflowType = ", "expected a value for WorkflowType"),
            ("Nope = 1", "unknown search attribute 'Nope'"),
            ("CustomIntField = 'x'", "CustomIntField is an int"),
            ("StartTime > 'later'", "StartTime is a time"),
        ]:
            # The client's channel maps the status to its typed error.
            with pytest.raises(CadenceRpcError) as info:
                await env.count(query)
            assert info.value.code == grpc.StatusCode.INVALID_ARGUMENT
            assert message in str(info.value.args[0])
