"""Server CPU per unary call under different grpc.aio server options (the floor of grpc_floor.py).

Which channel arguments of `grpc.aio.server` change what the transport costs per call:
each named variant below runs the same empty MetaAPI.Health handler on uvloop, in a child
process, and the driver reads the child's CPU time (utime + stime) over the calls.
Variants run interleaved for several rounds, since the machine is shared and noisy.

    python benchmarks/grpc_options.py [-n 10000] [-c 50] [-r 3] [variant ...]

Prints one JSON line per run and a median per variant.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import statistics
import sys
from typing import Any

from grpc_floor import _cpu_seconds, _drive, _free_port

BASE: list[tuple[str, Any]] = [("grpc.so_reuseport", 0)]

VARIANTS: dict[str, list[tuple[str, Any]]] = {
    "default": BASE,
    "no-channelz": [*BASE, ("grpc.enable_channelz", 0)],
    "throughput": [*BASE, ("grpc.optimization_target", "throughput")],
    "latency": [*BASE, ("grpc.optimization_target", "latency")],
    "no-channelz+throughput": [
        *BASE, ("grpc.enable_channelz", 0), ("grpc.optimization_target", "throughput"),
    ],
    "no-bdp-probe": [*BASE, ("grpc.http2.bdp_probe", 0)],
    "minimal-stack": [*BASE, ("grpc.minimal_stack", 1)],
    "no-bdp+minimal+no-channelz": [
        *BASE, ("grpc.http2.bdp_probe", 0), ("grpc.minimal_stack", 1), ("grpc.enable_channelz", 0),
    ],
}


def _serve(port: int, ready: Any, options: list[tuple[str, Any]]) -> None:
    import grpc
    import uvloop
    from cadence.api.v1 import service_meta_pb2, service_meta_pb2_grpc

    class Meta(service_meta_pb2_grpc.MetaAPIServicer):
        async def Health(self, request: object, context: object) -> service_meta_pb2.HealthResponse:
            return service_meta_pb2.HealthResponse(ok=True, message="ok")

    async def main() -> None:
        server = grpc.aio.server(options=options)
        service_meta_pb2_grpc.add_MetaAPIServicer_to_server(Meta(), server)
        server.add_insecure_port(f"127.0.0.1:{port}")
        await server.start()
        ready.set()
        await server.wait_for_termination()

    uvloop.run(main())


def run_variant(name: str, calls: int, concurrency: int) -> float:
    port = _free_port()
    ready = multiprocessing.Event()
    proc = multiprocessing.Process(target=_serve, args=(port, ready, VARIANTS[name]), daemon=True)
    proc.start()
    try:
        if not ready.wait(30):
            raise RuntimeError("server did not start")
        assert proc.pid is not None
        before = _cpu_seconds(proc.pid)
        elapsed = asyncio.run(_drive(port, calls, concurrency, True))
        cpu = _cpu_seconds(proc.pid) - before
    finally:
        proc.terminate()
        proc.join(10)
    us = 1e6 * cpu / calls
    print(json.dumps({"variant": name, "calls_per_second": round(calls / elapsed), "server_cpu_us_per_call": round(us, 1)}))
    return us


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-n", "--calls", type=int, default=10_000)
    ap.add_argument("-c", "--concurrency", type=int, default=50)
    ap.add_argument("-r", "--rounds", type=int, default=3)
    ap.add_argument("variants", nargs="*", help=f"default: all of {', '.join(VARIANTS)}")
    args = ap.parse_args(argv)
    unknown = [v for v in args.variants if v not in VARIANTS]
    if unknown:
        ap.error(f"unknown variant(s): {', '.join(unknown)}")
    args.variants = args.variants or list(VARIANTS)
    results: dict[str, list[float]] = {v: [] for v in args.variants}
    for _ in range(args.rounds):
        for v in args.variants:
            results[v].append(run_variant(v, args.calls, args.concurrency))
    for v, us in results.items():
        print(json.dumps({"variant": v, "median_server_cpu_us_per_call": round(statistics.median(us), 1)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
