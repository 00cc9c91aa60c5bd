"""`cadence-fast tasklist ...` run as a subprocess against a live server, with a real worker of
the official client polling the task list (asyncio subprocesses, so the worker keeps polling)."""

from __future__ import annotations

import asyncio
import json
import os
import re
from collections.abc import Iterator
from datetime import timedelta

import grpc
import pytest
from cadence import workflow
from cadence.api.v1 import service_domain_pb2, service_domain_pb2_grpc
from cadence.client import Client
from cadence.worker import Registry, Worker

from tests.conftest import ServerProcess, cli_command, unique

registry = Registry()


@registry.workflow(name="CliTaskListNoop")
class CliTaskListNoop:
    @workflow.run
    async def run(self) -> str:
        return "done"


@pytest.fixture(scope="module")
def domain(server: ServerProcess) -> Iterator[str]:
    name = unique("cli-tl")
    request = service_domain_pb2.RegisterDomainRequest(name=name)
    request.workflow_execution_retention_period.FromTimedelta(timedelta(days=1))
    with grpc.insecure_channel(server.address) as ch:
        service_domain_pb2_grpc.DomainAPIStub(ch).RegisterDomain(request, timeout=30)
    yield name


async def cli(server: ServerProcess, domain: str, *args: str) -> tuple[int, str, str]:
    env = {**os.environ, "CADENCE_FAST_ADDRESS": server.address, "CADENCE_CLI_DOMAIN": domain}
    proc = await asyncio.create_subprocess_exec(
        *cli_command(), *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def ok(server: ServerProcess, domain: str, *args: str) -> str:
    code, out, err = await cli(server, domain, *args)
    assert code == 0 and err == "", f"{args}: exit {code}\n{out}\n{err}"
    return out


async def fails(server: ServerProcess, domain: str, *args: str) -> str:
    code, out, err = await cli(server, domain, *args)
    assert code == 1, f"{args}: exit {code}\n{out}\n{err}"
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err and lines[0].startswith("cadence-fast: "), err
    return lines[0]


async def test_describe_list_partitions_and_list(server: ServerProcess, domain: str) -> None:
    task_list = unique("tl")
    async with Client(domain=domain, target=server.address) as client, Worker(client, task_list, registry):
        # The worker's pollers register with matching on their first poll.
        for _ in range(100):
            described = json.loads(await ok(server, domain, "tasklist", "describe", "--tl", task_list, "--json"))
            if described.get("pollers"):
                break
            await asyncio.sleep(0.1)
        identities = [p["identity"] for p in described["pollers"]]
        # The official worker's identity is "<client identity>@<task list>@<uuid>".
        assert identities and all(f"@{task_list}@" in i for i in identities), identities

        text = await ok(server, domain, "tasklist", "describe", "--tasklist", task_list)
        assert re.search(rf"^Task list:\s+{task_list}$", text, re.M), text
        assert re.search(r"^Type:\s+decision$", text, re.M), text
        assert re.search(r"^Backlog:\s+\d+$", text, re.M), text
        assert "POLLER IDENTITY" in text and identities[0] in text

        for _ in range(100):
            activity = await ok(server, domain, "tasklist", "describe", "--tl", task_list, "--tlt", "activity")
            if f"@{task_list}@" in activity:
                break
            await asyncio.sleep(0.1)
        assert re.search(r"^Type:\s+activity$", activity, re.M) and f"@{task_list}@" in activity, activity

        partitions = await ok(server, domain, "tasklist", "list-partition", "--tl", task_list)
        activity_table, decision_table = partitions.split("\n\n")
        assert activity_table.startswith("ACTIVITY TASK LIST PARTITION") and task_list in activity_table
        assert decision_table.startswith("DECISION TASK LIST PARTITION") and task_list in decision_table
        as_json = json.loads(await ok(server, domain, "tasklist", "lp", "--tl", task_list, "--json"))
        assert any(task_list in p["key"] for p in as_json["decision_task_list_partitions"]), as_json

        listed = await ok(server, domain, "tasklist", "list")
        assert re.search(rf"^{re.escape(task_list)}\s+decision\s+\d+$", listed, re.M), listed

    # Nobody polls a list nobody has used.
    idle = unique("idle")
    assert f"No poller for task list {idle}" in await ok(server, domain, "tasklist", "describe", "--tl", idle)


async def test_errors(server: ServerProcess, domain: str) -> None:
    assert "--tasklist is required" in await fails(server, domain, "tasklist", "describe")
    assert "--tasklist is required" in await fails(server, domain, "tasklist", "list-partition")
    assert "--tasklisttype" in await fails(server, domain, "tasklist", "describe", "--tl", "x", "--tlt", "timer")
    assert "NOT_FOUND" in await fails(server, domain, "tasklist", "--domain", unique("nodomain"), "describe", "--tl", "x")
