"""PostgreSQL goes away mid-run and comes back: calls get UNAVAILABLE, never lost or corrupted state.

The test stops and starts the real PostgreSQL cluster of this machine
(`pg_ctlcluster --skip-systemctl-redirect 15 main stop|start`), so it keeps the outage
short and always restarts the server, whatever happens.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from typing import TypeVar

import grpc
import pytest
from cadence.api.v1 import (
    common_pb2,
    decision_pb2,
    service_worker_pb2,
    service_worker_pb2_grpc,
    service_workflow_pb2,
    tasklist_pb2,
    workflow_pb2,
)

from cadence_fast.persistence import create_store
from cadence_fast.persistence.errors import Unavailable
from cadence_fast.persistence.records import DomainRecord
from tests.plugins.databases import server_store
from tests.plugins.test_fencing import DOMAIN, TASK_LIST, Frontend

pytestmark = pytest.mark.postgres
T = TypeVar("T")


def _cluster() -> tuple[str, str]:
    out = subprocess.run(["pg_lsclusters", "-h"], capture_output=True, text=True)
    if out.returncode != 0 or not out.stdout.strip():
        pytest.fail("pg_lsclusters found no PostgreSQL cluster to stop and start", pytrace=False)
    version, name = out.stdout.split()[:2]
    return version, name


def _pg_ctl(action: str) -> None:
    version, name = _cluster()
    subprocess.run(
        ["pg_ctlcluster", "--skip-systemctl-redirect", version, name, action], check=True, capture_output=True, timeout=60
    )


def _pg_ready() -> bool:
    return subprocess.run(["pg_isready", "-h", "127.0.0.1", "-q"], timeout=10).returncode == 0


@pytest.fixture
def outage() -> Iterator[Callable[[], None]]:
    """Call it to stop PostgreSQL; the fixture starts it again at teardown if the test did not."""
    if shutil.which("pg_ctlcluster") is None:
        pytest.fail("pg_ctlcluster is needed to stop and start PostgreSQL", pytrace=False)
    yield lambda: _pg_ctl("stop")
    if not _pg_ready():
        _pg_ctl("start")
    for _ in range(60):
        if _pg_ready():
            break
        time.sleep(0.5)


def _restart_pg() -> None:
    _pg_ctl("start")
    for _ in range(60):
        if _pg_ready():
            return
        time.sleep(0.5)
    raise AssertionError("PostgreSQL did not come back")


@pytest.fixture
def pg_store_url() -> Iterator[str]:
    with server_store("postgres") as url:
        yield url


def _until_ok(fn: Callable[[], T], what: str, seconds: float = 60.0) -> T:
    """Retry UNAVAILABLE / ABORTED as a client would."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            return fn()
        except grpc.RpcError as e:
            if e.code() not in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.ABORTED) or time.monotonic() > deadline:
                raise AssertionError(f"{what}: {e.code()} {e.details()}") from None
            time.sleep(0.5)


def _complete_one_decision(channel: grpc.Channel, result: str) -> str:
    """Poll the workflow task list once and complete the workflow; returns its workflow id."""
    worker = service_worker_pb2_grpc.WorkerAPIStub(channel)
    task = worker.PollForDecisionTask(
        service_worker_pb2.PollForDecisionTaskRequest(
            domain=DOMAIN, task_list=tasklist_pb2.TaskList(name=TASK_LIST), identity="outage-worker"
        ),
        timeout=30,
    )
    assert task.task_token, "no decision task was delivered"
    worker.RespondDecisionTaskCompleted(
        service_worker_pb2.RespondDecisionTaskCompletedRequest(
            task_token=task.task_token,
            identity="outage-worker",
            decisions=[
                decision_pb2.Decision(
                    complete_workflow_execution_decision_attributes=decision_pb2.CompleteWorkflowExecutionDecisionAttributes(
                        result=common_pb2.Payload(data=result.encode())
                    )
                )
            ],
        ),
        timeout=30,
    )
    return str(task.workflow_execution.workflow_id)


def _close_status(f: Frontend, workflow_id: str) -> int:
    resp = f.workflow.DescribeWorkflowExecution(
        service_workflow_pb2.DescribeWorkflowExecutionRequest(
            domain=DOMAIN, workflow_execution=common_pb2.WorkflowExecution(workflow_id=workflow_id)
        ),
        timeout=30,
    )
    return int(resp.workflow_execution_info.close_status)


def test_server_rides_out_a_database_outage(pg_store_url: str, server_factory: type, outage: Callable[[], None]) -> None:
    server = server_factory(pg_store_url).start()
    f = Frontend(server.address)
    try:
        f.register_domain()
        before = f"outage-before-{uuid.uuid4().hex[:6]}"
        f.start(before)

        outage()
        during = f"outage-during-{uuid.uuid4().hex[:6]}"
        with pytest.raises(grpc.RpcError) as down:
            f.start(during)
        assert down.value.code() == grpc.StatusCode.UNAVAILABLE, down.value.details()
        with pytest.raises(grpc.RpcError) as down:
            f.signal(before, "during-outage")
        assert down.value.code() == grpc.StatusCode.UNAVAILABLE, down.value.details()

        _restart_pg()
        # The client retries the start with the same workflow id; the server is still the owner.
        _until_ok(lambda: f.start(during), "start after the outage")
        _until_ok(lambda: f.signal(before, "after-outage"), "signal after the outage")

        # Both open workflows complete; nothing of the failed calls half-landed.
        done = {_until_ok(lambda: _complete_one_decision(f.channel, "ok"), "decision") for _ in range(2)}
        assert done == {before, during}
        for wf in (before, during):
            assert _close_status(f, wf) == workflow_pb2.WORKFLOW_EXECUTION_CLOSE_STATUS_COMPLETED
        assert f.signals(before) == ["after-outage"]
    finally:
        f.close()


def test_store_calls_fail_unavailable_then_recover(pg_store_url: str, outage: Callable[[], None]) -> None:
    async def scenario() -> None:
        store = create_store(pg_store_url)
        await store.open()
        try:
            await store.create_domain(DomainRecord("outage-d1", "outage-1", 0, b"one"))
            outage()
            t0 = time.monotonic()
            with pytest.raises(Unavailable):
                await store.get_domain(name="outage-1")
            with pytest.raises(Unavailable):
                await store.create_domain(DomainRecord("outage-d2", "outage-2", 0, b"two"))
            assert time.monotonic() - t0 < 60, "calls must fail, not hang, while the database is down"
            await asyncio.to_thread(_restart_pg)
            deadline = time.monotonic() + 30
            while True:  # the pool reconnects on its own; a caller just retries
                try:
                    await store.create_domain(DomainRecord("outage-d2", "outage-2", 0, b"two"))
                    break
                except Unavailable:
                    if time.monotonic() > deadline:
                        raise
                    await asyncio.sleep(0.5)
            assert (await store.get_domain(name="outage-1")).data == b"one"
            assert (await store.get_domain(domain_id="outage-d2")).data == b"two"
        finally:
            await store.close()

    asyncio.run(scenario())

