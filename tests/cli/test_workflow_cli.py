"""`cadence-fast workflow ...` run as a subprocess against a live server.

Workflows that need decisions are driven by a real worker of the official Python client
running in the test's event loop, so the CLI runs through asyncio subprocesses (a blocking
subprocess call would starve the worker).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import grpc
import pytest
from cadence import workflow
from cadence.api.v1 import (
    common_pb2,
    service_domain_pb2,
    service_domain_pb2_grpc,
    service_workflow_pb2,
    service_workflow_pb2_grpc,
    tasklist_pb2,
)
from cadence.client import Client
from cadence.worker import Registry, Worker
from google.protobuf import duration_pb2

from tests.conftest import ServerProcess, cli_command, free_port, unique

registry = Registry()


class CliBoom(Exception):
    pass


@registry.activity(name="cli_greet")
async def cli_greet(name: str) -> str:
    return f"hello {name}"


@registry.workflow(name="CliGreeter")
class CliGreeter:
    @workflow.run
    async def run(self, name: str) -> str:
        return await workflow.execute_activity("cli_greet", str, name, start_to_close_timeout=timedelta(seconds=10))


@registry.workflow(name="CliFailing")
class CliFailing:
    @workflow.run
    async def run(self, message: str) -> str:
        raise CliBoom(message)


@registry.workflow(name="CliContinuing")
class CliContinuing:
    """Continues as new `n` times, then returns how many runs there were."""

    @workflow.run
    async def run(self, n: int, runs: int) -> str:
        if n > 0:
            workflow.continue_as_new(n - 1, runs + 1)
        return f"done after {runs} runs"


@registry.workflow(name="CliWaiter")
class CliWaiter:
    """Waits for a "go" signal and returns what it carried; "state" answers what it has."""

    def __init__(self) -> None:
        self.value: str | None = None

    @workflow.signal(name="go")
    def go(self, value: str) -> None:
        self.value = value

    @workflow.query(name="state")
    def state(self) -> str:
        return self.value or "waiting"

    @workflow.run
    async def run(self) -> str:
        await workflow.wait_condition(lambda: self.value is not None)
        return f"got {self.value}"


# --- running the CLI -------------------------------------------------------------------


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str


@dataclass
class Cli:
    address: str
    domain: str

    def env(self, domain: bool) -> dict[str, str]:
        env = {**os.environ, "CADENCE_FAST_ADDRESS": self.address}
        env.pop("CADENCE_CLI_DOMAIN", None)
        if domain:
            env["CADENCE_CLI_DOMAIN"] = self.domain
        return env

    async def run(self, *args: str, stdin: str | None = None, domain: bool = True, within: float = 90) -> Result:
        proc = await asyncio.create_subprocess_exec(
            *cli_command(), *args,
            stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=self.env(domain),
        )
        out, err = await asyncio.wait_for(proc.communicate(stdin.encode() if stdin is not None else None), within)
        assert proc.returncode is not None
        return Result(proc.returncode, out.decode(), err.decode())

    async def ok(self, *args: str, **kw: object) -> str:
        r = await self.run(*args, **kw)  # type: ignore[arg-type]
        assert r.returncode == 0, f"{args}: exit {r.returncode}\n{r.stdout}\n{r.stderr}"
        assert r.stderr == "" or "more results" in r.stderr, r.stderr
        return r.stdout

    async def fails(self, *args: str, **kw: object) -> str:
        """A command that must fail the CLI's way: exit 1, one line on stderr, no traceback."""
        r = await self.run(*args, **kw)  # type: ignore[arg-type]
        assert r.returncode == 1, f"{args}: exit {r.returncode}\n{r.stdout}\n{r.stderr}"
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
        assert lines[0].startswith("cadence-fast: "), lines[0]
        return lines[0]

    async def json(self, *args: str) -> dict:
        return json.loads(await self.ok(*args, "--json"))


def register_domain(address: str, name: str) -> None:
    request = service_domain_pb2.RegisterDomainRequest(name=name)
    request.workflow_execution_retention_period.FromTimedelta(timedelta(days=1))
    with grpc.insecure_channel(address) as ch:
        service_domain_pb2_grpc.DomainAPIStub(ch).RegisterDomain(request, timeout=30)


@pytest.fixture(scope="module")
def domain(server: ServerProcess) -> Iterator[str]:
    name = unique("cli-wf")
    register_domain(server.address, name)
    yield name


@pytest.fixture
def cli(server: ServerProcess, domain: str) -> Cli:
    return Cli(server.address, domain)


@contextlib.asynccontextmanager
async def worker(cli: Cli) -> AsyncIterator[str]:
    """A real Worker of the official client on a fresh task list; yields the task list."""
    task_list = unique("cli-tl")
    async with Client(domain=cli.domain, target=cli.address) as client, Worker(client, task_list, registry):
        yield task_list


def start_flags(task_list: str, workflow_type: str, workflow_id: str, *extra: str) -> list[str]:
    return ["--tl", task_list, "--wt", workflow_type, "--et", "60", "--dt", "10", "-w", workflow_id, *extra]


# --- start, run, show, describe --------------------------------------------------------


async def test_run_prints_the_result_and_show_reads_the_history(cli: Cli, tmp_path: Path) -> None:
    wid = unique("greet")
    async with worker(cli) as tl:
        out = await cli.ok("workflow", "run", *start_flags(tl, "CliGreeter", wid, "--input", '"bob"'))
    assert f"workflow id {wid}" in out
    assert re.search(r"^Status:\s+COMPLETED$", out, re.M), out
    assert re.search(r'^Result:\s+"hello bob"$', out, re.M), out

    shown = await cli.ok("workflow", "show", "--wid", wid)
    lines = shown.splitlines()
    assert lines[0].split() == ["ID", "TIME", "TYPE", "DETAILS"]
    rows = {line.split()[2]: line for line in lines[1:]}
    for row in lines[1:]:
        # id, then an RFC 3339 time with milliseconds, then the type.
        assert re.match(r"^\d+\s+\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z\s+[A-Z]\w+", row), row
    assert lines[1].split()[:1] == ["1"] and "WorkflowExecutionStarted" in lines[1]
    assert "workflow_type=CliGreeter" in rows["WorkflowExecutionStarted"]
    assert f"task_list={tl}" in rows["WorkflowExecutionStarted"]
    assert 'input="bob"' in rows["WorkflowExecutionStarted"]
    assert "activity_type=cli_greet" in rows["ActivityTaskScheduled"]
    assert 'result="hello bob"' in rows["ActivityTaskCompleted"]
    assert 'result="hello bob"' in rows["WorkflowExecutionCompleted"]
    assert "WorkflowExecutionCompleted" in lines[-1]

    history = await cli.json("workflow", "show", "-w", wid)
    events = history["events"]
    assert [e["event_id"] for e in events] == [str(i) for i in range(1, len(events) + 1)]  # int64 → JSON string
    assert events[0]["workflow_execution_started_event_attributes"]["workflow_type"]["name"] == "CliGreeter"

    # Values are cut at --max_field_length (default 100) unless --print_full.
    short = (await cli.ok("workflow", "show", "-w", wid, "--maxl", "8")).splitlines()[1]
    assert f"task_list={tl[:5]}..." in short and tl not in short, short
    assert f"task_list={tl}," in (await cli.ok("workflow", "show", "-w", wid, "--maxl", "8", "--pf")).splitlines()[1]

    path = tmp_path / "history.json"
    assert "written to" in await cli.ok("workflow", "show", "-w", wid, "--of", str(path))
    assert json.loads(path.read_text()) == history

    one = json.loads(await cli.ok("workflow", "show", "-w", wid, "--event_id", "1"))
    assert "workflow_execution_started_event_attributes" in one
    assert "no event 999" in await cli.fails("workflow", "show", "-w", wid, "--event_id", "999")

    described = await cli.ok("workflow", "describe", "-w", wid)
    assert re.search(r"^Status:\s+COMPLETED$", described, re.M), described
    assert re.search(r"^Type:\s+CliGreeter$", described, re.M), described
    assert re.search(rf"^Task list:\s+{tl}$", described, re.M), described
    info = (await cli.json("workflow", "desc", "-w", wid))["workflow_execution_info"]
    assert info["workflow_execution"]["workflow_id"] == wid
    assert info["close_status"] == "WORKFLOW_EXECUTION_CLOSE_STATUS_COMPLETED"


async def test_run_of_a_failing_workflow_exits_1_with_the_reason(cli: Cli) -> None:
    async with worker(cli) as tl:
        r = await cli.run("workflow", "run", *start_flags(tl, "CliFailing", unique("fail"), "-i", '"on purpose"'))
        assert r.returncode == 1, r
        assert re.search(r"^Status:\s+FAILED$", r.stdout, re.M), r.stdout
        assert re.search(r"^Reason:\s+CliBoom$", r.stdout, re.M), r.stdout
        assert "on purpose" in r.stdout

        wid = unique("fail")
        r = await cli.run("workflow", "run", "--json", *start_flags(tl, "CliFailing", wid, "-i", '"again"'))
    assert r.returncode == 1, r
    out = json.loads(r.stdout)
    assert (out["workflow_id"], out["status"], out["reason"]) == (wid, "FAILED", "CliBoom")
    assert "again" in out["details"]


async def test_run_follows_continue_as_new_to_the_last_run(cli: Cli) -> None:
    wid = unique("can")
    async with worker(cli) as tl:
        out = await cli.ok("workflow", "run", *start_flags(tl, "CliContinuing", wid, "-i", "2 1"))
    first = re.search(r"run id (\S+)$", out.splitlines()[0]).group(1)  # type: ignore[union-attr]
    new_runs = re.findall(r"^Continued as new: run id (\S+)$", out, re.M)
    assert len(new_runs) == 2 and first not in new_runs, out
    assert re.search(r'^Result:\s+"done after 3 runs"$', out, re.M), out

    last_of_first = (await cli.ok("workflow", "show", "-w", wid, "-r", first)).splitlines()[-1]
    assert "WorkflowExecutionContinuedAsNew" in last_of_first and f"new_execution_run_id={new_runs[0]}" in last_of_first
    current = await cli.json("workflow", "describe", "-w", wid)
    assert current["workflow_execution_info"]["workflow_execution"]["run_id"] == new_runs[1]


async def test_start_options_reach_the_started_event(cli: Cli) -> None:
    wid = unique("opts")  # no worker needed: only the start is looked at
    await cli.ok(
        "workflow", "start", *start_flags("opts-tl", "CliNobody", wid), "--cron", "*/5 * * * *",
        "--retry_attempts", "3", "--retry_interval", "2s", "--retry_max_interval", "1m", "--wrp", "RejectDuplicate",
    )
    started = (await cli.ok("workflow", "show", "-w", wid, "--pf")).splitlines()[1]
    assert "cron_schedule=*/5 * * * *" in started, started
    assert "retry_policy={initial_interval=2s, backoff_coefficient=2.0, maximum_interval=60s, maximum_attempts=3}" in started
    assert re.search(r"first_decision_task_backoff=\d+(\.\d+)?s", started), started
    described = await cli.ok("workflow", "describe", "-w", wid)
    assert re.search(r"^Cron schedule:\s+\*/5 \* \* \* \*$", described, re.M), described
    assert "needs --retry_attempts or --retry_expiration" in await cli.fails(
        "workflow", "start", *start_flags("opts-tl", "CliNobody", unique("opts")), "--retry_interval", "1s"
    )
    await cli.ok("workflow", "terminate", "-w", wid)


# --- start, query, signal, observe, cancel, terminate, signalwithstart -----------------


async def test_start_query_signal_and_observe(cli: Cli) -> None:
    wid = unique("wait")
    async with worker(cli) as tl:
        # The domain given after `workflow` (the Go CLI's global flag position), no env.
        started = json.loads(
            await cli.ok("workflow", "--domain", cli.domain, "start", "--json", *start_flags(tl, "CliWaiter", wid),
                         domain=False)
        )
        assert started["workflow_id"] == wid and started["run_id"]
        observer = asyncio.create_task(cli.run("workflow", "observe", "-w", wid, "-r", started["run_id"]))

        described = await cli.ok("workflow", "describe", "-w", wid)
        assert re.search(r"^Status:\s+OPEN$", described, re.M), described

        assert (await cli.ok("workflow", "query", "-w", wid, "--qt", "state")).strip() == '"waiting"'
        assert "QueryFailedError" in await cli.fails("workflow", "query", "-w", wid, "--qt", "nosuch")

        assert "succeeded" in await cli.ok("workflow", "signal", "-w", wid, "--name", "go", "-i", '"x"')
        watched = await asyncio.wait_for(observer, 60)
        assert watched.returncode == 0, watched
        lines = watched.stdout.splitlines()
        assert "WorkflowExecutionStarted" in lines[0]
        signaled = next(line for line in lines if "WorkflowExecutionSignaled" in line)
        assert 'signal_name=go' in signaled and 'input="x"' in signaled
        assert any("WorkflowExecutionCompleted" in line for line in lines)
        assert re.search(r'^Result:\s+"got x"$', watched.stdout, re.M), watched.stdout

        # A closed run still answers; with a reject condition it declines instead.
        assert await cli.json("workflow", "query", "-w", wid, "--qt", "state") == {"query_result": "x"}
        rejected = await cli.ok("workflow", "query", "-w", wid, "--qt", "state", "--qrc", "not_open")
        assert rejected.strip() == "Query was rejected: the workflow is COMPLETED"
    # Signalling a closed run is the server's error, printed as one line.
    assert "NOT_FOUND" in await cli.fails("workflow", "signal", "-w", wid, "-n", "go", "-i", '"late"')


async def test_cancel_terminate_and_signalwithstart(cli: Cli) -> None:
    async with worker(cli) as tl:
        cancelled, terminated, sws = unique("cancel"), unique("term"), unique("sws")
        await cli.ok("workflow", "start", *start_flags(tl, "CliWaiter", cancelled))
        await cli.ok("workflow", "start", *start_flags(tl, "CliWaiter", terminated))

        assert "requested" in await cli.ok("workflow", "cancel", "-w", cancelled, "--reason", "no longer needed")
        watched = await cli.ok("workflow", "observe", "-w", cancelled)
        assert "WorkflowExecutionCancelRequested" in watched and "no longer needed" in watched
        assert re.search(r"^Status:\s+CANCELED$", watched, re.M), watched
        # --json: one event per line, ending with the close event (here the run is over already).
        streamed = [json.loads(line) for line in (await cli.ok("workflow", "ob", "-w", cancelled, "--json")).splitlines()]
        assert [e["event_id"] for e in streamed] == [str(i) for i in range(1, len(streamed) + 1)]
        assert "workflow_execution_canceled_event_attributes" in streamed[-1]

        assert "succeeded" in await cli.ok(
            "workflow", "terminate", "-w", terminated, "--reason", "enough", "--details", '{"by": "test"}'
        )
        shown = await cli.ok("workflow", "show", "-w", terminated)
        last = shown.splitlines()[-1]
        assert "WorkflowExecutionTerminated" in last and "reason=enough" in last and '"by": "test"' in last
        described = await cli.ok("workflow", "describe", "-w", terminated)
        assert re.search(r"^Status:\s+TERMINATED$", described, re.M), described

        out = await cli.ok(
            "workflow", "signalwithstart", *start_flags(tl, "CliWaiter", sws), "--sn", "go", "--si", '"y"'
        )
        assert f"workflow id {sws}" in out
        watched = await cli.ok("workflow", "observe", "-w", sws)
        assert re.search(r'^Result:\s+"got y"$', watched, re.M), watched


async def test_reset(cli: Cli) -> None:
    wid = unique("reset")
    async with worker(cli) as tl:
        await cli.ok("workflow", "run", *start_flags(tl, "CliGreeter", wid, "-i", '"ann"'))
        assert "--event_id or --reset_type" in await cli.fails("workflow", "reset", "-w", wid, "--reason", "r")
        assert "--reason is required" in await cli.fails("workflow", "reset", "-w", wid, "--event_id", "4")
        reset = await cli.json("workflow", "reset", "-w", wid, "--reset_type", "FirstDecisionCompleted", "--reason", "retry")
        assert reset["event_id"] == 4 and reset["run_id"]
        watched = await cli.ok("workflow", "observe", "-w", wid, "-r", reset["run_id"])
        assert re.search(r'^Result:\s+"hello ann"$', watched, re.M), watched
        # The new run replays the base up to the reset point, then fails that decision to redo it.
        failed = next(line for line in watched.splitlines() if "DecisionTaskFailed" in line)
        assert "cause=RESET_WORKFLOW" in failed, failed

        again = await cli.ok("workflow", "rs", "-w", wid, "-r", reset["run_id"], "--event_id", "4", "--reason", "again")
        new_run = re.search(r"^Reset workflow \S+ at event 4: new run id (\S+)$", again, re.M)
        assert new_run and new_run.group(1) != reset["run_id"], again
        current = await cli.json("workflow", "describe", "-w", wid)
        assert current["workflow_execution_info"]["workflow_execution"]["run_id"] == new_run.group(1)
        assert "--reset_type" in await cli.fails("workflow", "reset", "-w", wid, "--reset_type", "Yesterday", "--reason", "r")


# --- list, scan, count ------------------------------------------------------------------


async def wait_for_count(cli: Cli, query: str, expected: int) -> None:
    """Visibility records land after the start commits; poll the count until they are all in."""
    for _ in range(100):
        if int((await cli.ok("workflow", "count", "--query", query)).strip()) == expected:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"count of {query!r} never reached {expected}")


def table_ids(out: str) -> list[str]:
    """Workflow ids (2nd column) of every table row in out, headers skipped."""
    return [line.split()[1] for line in out.splitlines() if line.strip() and not line.startswith("WORKFLOW TYPE")]


async def test_list_scan_and_count(cli: Cli) -> None:
    wtype = unique("CliListed")  # no worker: these stay open (or get terminated) here
    tl = unique("cli-tl")
    ids = [f"{wtype}-{i}" for i in range(5)]
    # Set up through the API directly (start/terminate have their own CLI tests): fewer processes.
    with grpc.insecure_channel(cli.address) as ch:
        stub = service_workflow_pb2_grpc.WorkflowAPIStub(ch)
        for wid in ids:
            stub.StartWorkflowExecution(
                service_workflow_pb2.StartWorkflowExecutionRequest(
                    domain=cli.domain, workflow_id=wid, workflow_type=common_pb2.WorkflowType(name=wtype),
                    task_list=tasklist_pb2.TaskList(name=tl), request_id=str(uuid.uuid4()),
                    execution_start_to_close_timeout=duration_pb2.Duration(seconds=60),
                    task_start_to_close_timeout=duration_pb2.Duration(seconds=10),
                ),
                timeout=30,
            )
        for wid in ids[:2]:
            stub.TerminateWorkflowExecution(
                service_workflow_pb2.TerminateWorkflowExecutionRequest(
                    domain=cli.domain, workflow_execution=common_pb2.WorkflowExecution(workflow_id=wid),
                    reason="listing test",
                ),
                timeout=30,
            )
    query = f"WorkflowType = '{wtype}'"
    await wait_for_count(cli, query, 5)
    assert json.loads(await cli.ok("workflow", "cnt", "-q", query, "--json")) == {"count": 5}

    # One page, then a hint on stderr with the token to continue.
    r = await cli.run("workflow", "list", "--query", query, "--ps", "2")
    assert r.returncode == 0, r
    first = table_ids(r.stdout)
    assert len(first) == 2 and set(first) <= set(ids)
    token = re.search(r"--next_page_token (\S+)\)", r.stderr)
    assert token, r.stderr
    second = table_ids(await cli.ok("workflow", "list", "-q", query, "--ps", "2", "--next_page_token", token.group(1)))
    assert len(second) == 2 and not set(first) & set(second)

    assert sorted(table_ids(await cli.ok("workflow", "list", "-q", query, "--ps", "2", "--all"))) == sorted(ids)
    # --more waits for Enter between pages; "q" stops after the page shown.
    paged = await cli.run("workflow", "list", "-q", query, "--ps", "2", "--more", stdin="\n\n\n")
    assert paged.returncode == 0 and sorted(table_ids(paged.stdout)) == sorted(ids), paged
    assert paged.stderr.count("press Enter") == 2
    stopped = await cli.run("workflow", "list", "-q", query, "--ps", "2", "--more", stdin="q\n")
    assert stopped.returncode == 0 and len(table_ids(stopped.stdout)) == 2, stopped

    page = await cli.json("workflow", "list", "-q", query, "--ps", "10")
    assert sorted(e["workflow_execution"]["workflow_id"] for e in page["executions"]) == sorted(ids)
    assert "next_page_token" not in page

    # Without a query: open or closed ones, filtered by type (ListOpen/ListClosed).
    assert sorted(table_ids(await cli.ok("workflow", "list", "--open", "--wt", wtype))) == sorted(ids[2:])
    closed = await cli.ok("workflow", "list", "--wt", wtype)
    assert sorted(table_ids(closed)) == sorted(ids[:2]) and "TERMINATED" in closed
    assert table_ids(await cli.ok("workflow", "list", "--open", "-w", ids[3])) == [ids[3]]

    scanned = await cli.ok("workflow", "scan", "--query", query, "--ps", "2")
    assert sorted(table_ids(scanned)) == sorted(ids)
    streamed = (await cli.ok("workflow", "scan", "-q", query, "--json")).splitlines()
    assert sorted(json.loads(line)["workflow_execution"]["workflow_id"] for line in streamed) == sorted(ids)

    # Memo and search attributes given at start come back in listings, and the query finds them.
    tagged, tag = unique("tagged"), unique("tag")
    await cli.ok(
        "workflow", "start", *start_flags(tl, wtype + "-tagged", tagged),
        "--memo", 'owner="ops"', "--search_attr", f'CustomKeywordField="{tag}"',
    )
    await wait_for_count(cli, f"CustomKeywordField = '{tag}'", 1)
    found = await cli.ok("workflow", "list", "-q", f"CustomKeywordField = '{tag}'", "--pme", "--psa")
    assert table_ids(found) == [tagged]
    assert '{owner="ops"}' in found and f'{{CustomKeywordField="{tag}"}}' in found, found

    assert "INVALID_ARGUMENT" in await cli.fails("workflow", "list", "--query", "WorkflowType = ")
    assert "INVALID_ARGUMENT" in await cli.fails("workflow", "count", "--query", "NoSuchAttribute = 1")
    assert "at most one of" in await cli.fails("workflow", "list", "--wt", wtype, "-w", ids[0])
    assert "cannot be combined with --open" in await cli.fails("workflow", "list", "-q", query, "--open")
    assert "--pagesize" in await cli.fails("workflow", "list", "--ps", "0")


# --- errors ------------------------------------------------------------------------------


async def test_errors_are_one_line_and_exit_1(cli: Cli) -> None:
    other = unique("no-such-domain")
    unreachable = Cli(f"127.0.0.1:{free_port()}", cli.domain)
    start = ("workflow", "start", "--wt", "T", "--tl", "t", "--et", "10")
    # Independent failures, run side by side: (expected text in the error line, the command).
    cases: list[tuple[str, tuple[str, ...], dict[str, object]]] = [
        ("NOT_FOUND", ("workflow", "show", "-w", unique("nobody")), {}),
        ("NOT_FOUND", ("workflow", "describe", "-w", unique("nobody")), {}),
        ("CADENCE_CLI_DOMAIN", ("workflow", "describe", "-w", "x"), {"domain": False}),
        ("NOT_FOUND", ("workflow", "-d", other, "describe", "-w", "x"), {"domain": False}),
        ("--workflow_id is required", ("workflow", "show"), {}),
        ("--tasklist is required", ("workflow", "start", "--wt", "T", "--et", "10"), {}),
        ("--execution_timeout is required", ("workflow", "start", "--wt", "T", "--tl", "t"), {}),
        ("--execution_timeout", (*start[:-2], "--et", "soon"), {}),
        ("--input: not valid JSON", (*start, "--input", "{oops"), {}),
        ("--workflowidreusepolicy", (*start, "--wrp", "sometimes"), {}),
        ("--status", ("workflow", "list", "--status", "sleepy"), {}),
        ("--name is required", ("workflow", "signal", "-w", "x"), {}),
        ("--query_type is required", ("workflow", "query", "-w", "x"), {}),
    ]
    lines = await asyncio.gather(*(cli.fails(*args, **kw) for _, args, kw in cases))
    for (expected, args, _), line in zip(cases, lines, strict=True):
        assert expected in line, (args, line)
    assert "cannot reach the server" in await unreachable.fails("workflow", "count")
    # --address after the group (the Go CLI's global flag position) wins over the environment.
    assert (await unreachable.ok("workflow", "--address", cli.address, "count")).strip().isdigit()
    # Duplicate start: the server's WorkflowExecutionAlreadyStartedError.
    wid = unique("dup")
    await cli.ok("workflow", "start", *start_flags("dup-tl", "CliNobody", wid))
    assert "ALREADY_EXISTS" in await cli.fails("workflow", "start", *start_flags("dup-tl", "CliNobody", wid))


def test_help_lists_every_command() -> None:
    import subprocess

    out = subprocess.run([*cli_command(), "workflow", "--help"], capture_output=True, text=True, timeout=60).stdout
    for command in (
        "start", "run", "show", "describe", "list", "count", "scan", "query", "signal", "signalwithstart",
        "cancel", "terminate", "reset", "observe",
    ):
        assert re.search(rf"^\s+{command}\b", out, re.M), (command, out)
