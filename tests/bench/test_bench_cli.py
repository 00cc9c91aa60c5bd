"""`cadence-fast bench` run as a subprocess against a real server, as a user would run it.

The load generator's own claims are checked against the server: the workflows it says
completed are closed (COMPLETED) in visibility, and their histories hold the activities,
signals and timers asked for.
"""

from __future__ import annotations

import json
import subprocess
import time
from typing import Any

import grpc
from cadence.api.v1 import (
    common_pb2,
    history_pb2,
    service_visibility_pb2,
    service_visibility_pb2_grpc,
    service_workflow_pb2,
    service_workflow_pb2_grpc,
    workflow_pb2,
)

from tests.conftest import ServerProcess, cli_command, free_port, unique

SUMMARY_KEYS = {
    "address", "workflows", "activities", "signals", "timers", "completed", "seconds", "workflows_per_second",
    "p50_ms", "p95_ms", "p99_ms", "max_ms", "errors", "timed_out",
}  # fmt: skip


def bench(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*cli_command(), "bench", *args], capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL
    )


def closed_runs(address: str, domain: str, expected: int) -> list[Any]:
    """The domain's closed runs, once visibility shows `expected` of them (or after 15 s)."""
    with grpc.insecure_channel(address) as ch:
        api = service_visibility_pb2_grpc.VisibilityAPIStub(ch)
        deadline = time.monotonic() + 15
        while True:
            request = service_visibility_pb2.ListClosedWorkflowExecutionsRequest(domain=domain, page_size=100)
            request.start_time_filter.earliest_time.FromSeconds(0)
            request.start_time_filter.latest_time.FromSeconds(4_000_000_000)
            resp = api.ListClosedWorkflowExecutions(request, timeout=10)
            if len(resp.executions) >= expected or time.monotonic() > deadline:
                return list(resp.executions)
            time.sleep(0.2)


def history(address: str, domain: str, execution: common_pb2.WorkflowExecution) -> list[history_pb2.HistoryEvent]:
    with grpc.insecure_channel(address) as ch:
        resp = service_workflow_pb2_grpc.WorkflowAPIStub(ch).GetWorkflowExecutionHistory(
            service_workflow_pb2.GetWorkflowExecutionHistoryRequest(domain=domain, workflow_execution=execution),
            timeout=10,
        )
    return list(resp.history.events)


def kinds(events: list[history_pb2.HistoryEvent]) -> list[str]:
    return [e.WhichOneof("attributes") for e in events]


def test_json_summary_matches_the_server(server: ServerProcess) -> None:
    domain = unique("bench")
    r = bench("--address", server.address, "--domain", domain, "-w", "5", "-a", "2", "--json", "--timeout", "90")
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout)
    assert set(summary) == SUMMARY_KEYS
    assert summary["completed"] == summary["workflows"] == 5
    assert summary["activities"] == 2 and summary["errors"] == 0 and summary["timed_out"] is False
    assert summary["workflows_per_second"] > 0
    assert 0 < summary["p50_ms"] <= summary["p95_ms"] <= summary["p99_ms"] <= summary["max_ms"]
    runs = closed_runs(server.address, domain, 5)
    assert len(runs) == 5
    assert {e.close_status for e in runs} == {workflow_pb2.WORKFLOW_EXECUTION_CLOSE_STATUS_COMPLETED}
    events = kinds(history(server.address, domain, runs[0].workflow_execution))
    assert events.count("activity_task_completed_event_attributes") == 2
    assert events[-1] == "workflow_execution_completed_event_attributes"


def test_signals_and_timers(server: ServerProcess) -> None:
    domain = unique("bench")
    r = bench(
        "--address", server.address, "--domain", domain, "-w", "3", "-a", "1", "-s", "2", "-t", "2",
        "--timer-ms", "50", "--json", "--timeout", "90",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout)
    assert (summary["completed"], summary["signals"], summary["timers"]) == (3, 2, 2)
    # two 50 ms timers run one after the other: no workflow can finish sooner
    assert summary["p50_ms"] >= 100
    runs = closed_runs(server.address, domain, 3)
    assert len(runs) == 3
    for run in runs:
        events = kinds(history(server.address, domain, run.workflow_execution))
        assert events.count("workflow_execution_signaled_event_attributes") == 2
        assert events.count("timer_fired_event_attributes") == 2
        assert events.count("activity_task_completed_event_attributes") == 1
        assert events[-1] == "workflow_execution_completed_event_attributes"


def test_text_summary_with_inflight_limit(server: ServerProcess) -> None:
    domain = unique("bench")
    r = bench("--address", server.address, "--domain", domain, "-w", "4", "-a", "0", "-i", "2", "--timeout", "90")
    assert r.returncode == 0, r.stderr
    assert "4/4 completed" in r.stdout
    for label in ("throughput", "latency p50", "latency p95", "latency p99", "rpc errors"):
        assert label in r.stdout
    assert len(closed_runs(server.address, domain, 4)) == 4


def test_bad_flags_name_the_flag() -> None:
    for flags, name in ((["-w", "0"], "--workflows"), (["-a", "-1"], "--activities"),
                        (["--timer-ms", "0"], "--timer-ms"), (["--timeout", "-1"], "--timeout")):  # fmt: skip
        r = bench("--address", "127.0.0.1:1", *flags)
        assert r.returncode == 2, (flags, r.stderr)
        assert name in r.stderr


def test_unreachable_server_is_one_error_line() -> None:
    r = bench("--address", f"127.0.0.1:{free_port()}", "-w", "1", "--json", timeout=60)
    assert r.returncode == 1
    assert r.stderr.startswith("cadence-fast: ")
    assert r.stdout == ""
