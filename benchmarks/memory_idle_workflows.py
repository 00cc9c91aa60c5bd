"""Memory: the server's RSS while it holds N open, idle workflows (issue 6: 10,000 under 500 MB).

Starts a real `cadence-fast server start` on a fresh SQLite file, opens N workflows over
raw gRPC, and reports the server's resident set size (VmRSS) and its peak (VmHWM) from
/proc, before and after. Modes:
- started: each workflow is just started (its first decision task waits in matching);
- decided: each first decision is also completed with no decisions: the run is open with
  nothing pending at all (idle, as a workflow waiting for a signal).
Every run stays in the engine's mutable-state cache (20,000 runs), so this is the
worst case for memory.

    python benchmarks/memory_idle_workflows.py -w 10000 --mode decided

Prints one JSON line. Exit status 1 if the RSS is at or above --limit-mb (default 500).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import uuid

import grpc
from cadence.api.v1 import (
    common_pb2,
    service_domain_pb2,
    service_domain_pb2_grpc,
    service_worker_pb2,
    service_worker_pb2_grpc,
    service_workflow_pb2,
    service_workflow_pb2_grpc,
    tasklist_pb2,
)
from google.protobuf import duration_pb2

METADATA = (("rpc-service", "cadence-frontend"), ("rpc-caller", "memory-bench"), ("rpc-encoding", "proto"))
LISTEN_RE = re.compile(r"listening on (\S+):(\d+)")


def _seconds(s: int) -> duration_pb2.Duration:
    d = duration_pb2.Duration()
    d.FromSeconds(s)
    return d


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rss_mb(pid: int) -> tuple[float, float]:
    """(VmRSS, VmHWM) of a process in MB."""
    fields = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                fields[key] = int(value.split()[0]) / 1024
    return round(fields["VmRSS"], 1), round(fields["VmHWM"], 1)


async def open_workflows(address: str, workflows: int, mode: str, concurrency: int) -> int:
    channel = grpc.aio.insecure_channel(address)
    workflow_api = service_workflow_pb2_grpc.WorkflowAPIStub(channel)
    worker_api = service_worker_pb2_grpc.WorkerAPIStub(channel)
    domain = "memory-bench"
    await service_domain_pb2_grpc.DomainAPIStub(channel).RegisterDomain(
        service_domain_pb2.RegisterDomainRequest(name=domain, workflow_execution_retention_period=_seconds(86400)),
        metadata=METADATA,
    )
    task_list = tasklist_pb2.TaskList(name="idle-" + uuid.uuid4().hex[:8])
    gate = asyncio.Semaphore(concurrency)

    async def start(i: int) -> None:
        async with gate:
            await workflow_api.StartWorkflowExecution(
                service_workflow_pb2.StartWorkflowExecutionRequest(
                    domain=domain, workflow_id=f"idle-{i}", workflow_type=common_pb2.WorkflowType(name="idle"),
                    task_list=task_list, execution_start_to_close_timeout=_seconds(86400),
                    task_start_to_close_timeout=_seconds(60), request_id=str(uuid.uuid4()), identity="memory-bench",
                ),
                metadata=METADATA, timeout=60,
            )  # fmt: skip

    decided = 0
    all_decided = asyncio.Event()

    async def decider() -> None:
        nonlocal decided
        while True:
            r = await worker_api.PollForDecisionTask(
                service_worker_pb2.PollForDecisionTaskRequest(domain=domain, task_list=task_list, identity="mb"),
                metadata=METADATA, timeout=30,
            )  # fmt: skip
            if not r.task_token:
                continue
            await worker_api.RespondDecisionTaskCompleted(
                service_worker_pb2.RespondDecisionTaskCompletedRequest(task_token=r.task_token, identity="mb"),
                metadata=METADATA, timeout=30,
            )  # fmt: skip
            decided += 1
            if decided >= workflows:
                all_decided.set()

    deciders = [asyncio.create_task(decider()) for _ in range(16 if mode == "decided" else 0)]
    await asyncio.gather(*(start(i) for i in range(workflows)))
    if deciders:
        await asyncio.wait_for(all_decided.wait(), timeout=600)
        for d in deciders:
            d.cancel()
        await asyncio.gather(*deciders, return_exceptions=True)
    await channel.close()
    return decided


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-w", "--workflows", type=int, default=10_000)
    ap.add_argument("--mode", choices=("started", "decided"), default="decided")
    ap.add_argument("-c", "--concurrency", type=int, default=64)
    ap.add_argument("--limit-mb", type=float, default=500.0)
    ap.add_argument(
        "--server-cmd", default=f"{sys.executable} -m cadence_fast.cli.main",
        help="how to run cadence-fast (default: this Python's package)",
    )  # fmt: skip
    args = ap.parse_args(argv)
    port = _free_port()
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [*args.server_cmd.split(), "server", "start", "--port", str(port), "--db", os.path.join(tmp, "m.db")]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        try:
            assert proc.stdout is not None
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                line = proc.stdout.readline()
                if LISTEN_RE.search(line):
                    break
                if not line and proc.poll() is not None:
                    print("server did not start", file=sys.stderr)
                    return 2
            baseline = rss_mb(proc.pid)
            t0 = time.perf_counter()
            decided = asyncio.run(open_workflows(f"127.0.0.1:{port}", args.workflows, args.mode, args.concurrency))
            elapsed = time.perf_counter() - t0
            time.sleep(2.0)  # let the transfer queues settle
            rss, hwm = rss_mb(proc.pid)
        finally:
            proc.terminate()
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    result = {
        "workflows": args.workflows, "mode": args.mode, "decided": decided, "open_seconds": round(elapsed, 1),
        "baseline_rss_mb": baseline[0], "rss_mb": rss, "peak_rss_mb": hwm, "limit_mb": args.limit_mb,
        "kb_per_workflow": round((rss - baseline[0]) * 1024 / max(1, args.workflows), 1),
    }  # fmt: skip
    print(json.dumps(result))
    return 0 if rss < args.limit_mb else 1


if __name__ == "__main__":
    sys.exit(main())
