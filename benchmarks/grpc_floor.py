"""The gRPC floor: server CPU per unary call of a handler that does nothing, on uvloop.

`--native` measures the server's own transport (cadence_fast._core.h2, the default of
`server start`); without it, grpc.aio (`server start --transport grpcio`).

What the transport alone costs this server per RPC (as `server start` runs it), to read
the profile against: a bench workflow of one activity makes 7 RPCs (start, 2 decision
polls + 2 completions, 1 activity poll + 1 completion), so 7x this is the part of a
workflow's server CPU that no change in the engine can remove.

    python benchmarks/grpc_floor.py [-n 20000] [-c 50] [--native] [--proto]

The server runs in a child process; its CPU time (utime + stime) over the calls is read
from /proc. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import socket
import sys
import time

import grpc


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _serve(port: int, ready: multiprocessing.synchronize.Event, proto: bool, native: bool) -> None:  # type: ignore[name-defined]
    import uvloop
    from cadence.api.v1 import service_meta_pb2, service_meta_pb2_grpc

    class Meta(service_meta_pb2_grpc.MetaAPIServicer):
        async def Health(self, request: object, context: object) -> service_meta_pb2.HealthResponse:
            return service_meta_pb2.HealthResponse(ok=True, message="ok")

    async def echo(request: bytes, context: object) -> bytes:
        return request

    async def main() -> None:
        if native:
            from cadence_fast.transport import RpcServer

            server = RpcServer(32 * 1024 * 1024)
        else:
            server = grpc.aio.server()
        if proto:
            service_meta_pb2_grpc.add_MetaAPIServicer_to_server(Meta(), server)
        else:
            handler = grpc.method_handlers_generic_handler(
                "floor.Echo", {"Call": grpc.unary_unary_rpc_method_handler(echo)}
            )
            server.add_generic_rpc_handlers((handler,))
        server.add_insecure_port(f"127.0.0.1:{port}")
        await server.start()
        ready.set()
        await server.wait_for_termination()

    uvloop.run(main())


def _cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _drive(port: int, calls: int, concurrency: int, proto: bool) -> float:
    from cadence.api.v1 import service_meta_pb2, service_meta_pb2_grpc

    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        if proto:
            stub = service_meta_pb2_grpc.MetaAPIStub(channel)

            async def one() -> None:
                await stub.Health(service_meta_pb2.HealthRequest())
        else:
            call = channel.unary_unary("/floor.Echo/Call")

            async def one() -> None:
                await call(b"x" * 64)

        await one()
        left = calls
        t0 = time.perf_counter()

        async def worker() -> None:
            nonlocal left
            while left > 0:
                left -= 1
                await one()

        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-n", "--calls", type=int, default=20_000)
    ap.add_argument("-c", "--concurrency", type=int, default=50)
    ap.add_argument("--proto", action="store_true", help="a real generated servicer (MetaAPI.Health)")
    ap.add_argument("--native", action="store_true", help="the server's own transport (cadence_fast._core.h2)")
    args = ap.parse_args(argv)
    port = _free_port()
    ready = multiprocessing.Event()
    proc = multiprocessing.Process(target=_serve, args=(port, ready, args.proto, args.native), daemon=True)
    proc.start()
    try:
        if not ready.wait(30):
            print("server did not start", file=sys.stderr)
            return 2
        assert proc.pid is not None
        before = _cpu_seconds(proc.pid)
        elapsed = asyncio.run(_drive(port, args.calls, args.concurrency, args.proto))
        cpu = _cpu_seconds(proc.pid) - before
    finally:
        proc.terminate()
        proc.join(10)
    print(json.dumps({
        "calls": args.calls, "concurrency": args.concurrency, "handler": "MetaAPI.Health" if args.proto else "bytes echo",
        "transport": "native" if args.native else "grpc.aio",
        "seconds": round(elapsed, 2), "calls_per_second": round(args.calls / elapsed),
        "server_cpu_us_per_call": round(1e6 * cpu / args.calls, 1),
    }))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
