"""One server process: open the store, assemble the services, serve gRPC on uvloop.

SIGINT/SIGTERM: stop accepting calls, let in-flight ones finish (bounded by
`shutdown_grace_seconds`; long polls are answered empty at once), stop the queues,
close the store, exit 0.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
import socket
import sys
from dataclasses import dataclass

import grpc
from cadence.api.v1 import (
    service_domain_pb2_grpc,
    service_meta_pb2_grpc,
    service_schedule_pb2_grpc,
    service_visibility_pb2_grpc,
    service_worker_pb2_grpc,
    service_workflow_pb2_grpc,
)

from cadence_fast.config import ServerConfig
from cadence_fast.domain.cache import DomainCache
from cadence_fast.history.engine import HistoryEngine
from cadence_fast.matching.engine import MatchingEngine
from cadence_fast.persistence import create_store
from cadence_fast.persistence.errors import StoreError
from cadence_fast.persistence.store import Store
from cadence_fast.transport import RpcServer
from cadence_fast.visibility.manager import VisibilityManager

log = logging.getLogger("cadence_fast.server")

MAX_MESSAGE_BYTES = 32 * 1024 * 1024  # as Cadence's frontend


class StartupError(Exception):
    """A reason the server cannot start, printed as one line."""


@dataclass(slots=True)
class Services:
    """Everything a servicer may call. Built once per process."""

    config: ServerConfig
    store: Store
    domains: DomainCache
    matching: MatchingEngine
    history: HistoryEngine
    visibility: VisibilityManager

    async def start(self) -> None:
        await self.domains.start()
        await self.matching.start()
        await self.history.start()
        await self.visibility.start()

    async def stop(self) -> None:
        # Pollers first (they get empty replies), then the queues, then the cache.
        await self.matching.stop()
        await self.history.stop()
        await self.visibility.stop()
        await self.domains.stop()


async def open_store(config: ServerConfig) -> Store:
    try:
        store = create_store(config.store)
    except ValueError as e:
        raise StartupError(str(e)) from None
    try:
        await store.open(create_schema=store.auto_create_schema)
    except StoreError as e:
        raise StartupError(f"cannot open store {config.store}: {e}") from None
    except OSError as e:
        raise StartupError(f"cannot open store {config.store}: {e.strerror or e}") from None
    return store


def build_services(config: ServerConfig, store: Store) -> Services:
    domains = DomainCache(store)
    matching = MatchingEngine(store)
    history = HistoryEngine(store, config, domains, matching)
    visibility = VisibilityManager(store, config, domains)
    return Services(config, store, domains, matching, history, visibility)


def add_servicers(server: grpc.aio.Server | RpcServer, services: Services) -> None:
    from cadence_fast.api.base import add_encoded_handlers
    from cadence_fast.api.domain import DomainAPI
    from cadence_fast.api.meta import MetaAPI
    from cadence_fast.api.schedule import ScheduleAPI
    from cadence_fast.api.visibility import VisibilityAPI
    from cadence_fast.api.worker import WorkerAPI
    from cadence_fast.api.workflow import WorkflowAPI

    service_domain_pb2_grpc.add_DomainAPIServicer_to_server(DomainAPI(services), server)
    workflow = WorkflowAPI(services)
    service_workflow_pb2_grpc.add_WorkflowAPIServicer_to_server(workflow, server)
    add_encoded_handlers(workflow, server)
    worker = WorkerAPI(services)
    service_worker_pb2_grpc.add_WorkerAPIServicer_to_server(worker, server)
    add_encoded_handlers(worker, server)
    service_visibility_pb2_grpc.add_VisibilityAPIServicer_to_server(VisibilityAPI(services), server)
    service_meta_pb2_grpc.add_MetaAPIServicer_to_server(MetaAPI(services), server)
    service_schedule_pb2_grpc.add_ScheduleAPIServicer_to_server(ScheduleAPI(services), server)


def check_port_free(host: str, port: int) -> None:
    """StartupError if host:port cannot be bound.

    Checked before gRPC binds because a failed gRPC bind also logs its own C-core error
    line to stderr; the user should see exactly one clear line.
    """
    if port == 0:
        return
    try:
        family, kind, proto, _, sockaddr = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        with socket.socket(family, kind, proto) as sock:
            # As gRPC does: a port whose old connections are in TIME_WAIT is free.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(sockaddr)
    except OSError as e:
        raise StartupError(f"cannot listen on {host}:{port}: {(e.strerror or str(e)).lower()}") from None


async def serve(config: ServerConfig, ready: asyncio.Event | None = None) -> None:
    """Run until SIGINT/SIGTERM. Raises StartupError for a reason to print and exit 1."""
    check_port_free(config.host, config.port)
    store = await open_store(config)
    services = build_services(config, store)
    server: grpc.aio.Server | RpcServer
    if config.transport == "grpcio":
        server = grpc.aio.server(
            options=[
                # gRPC turns SO_REUSEPORT on by default, which would let a second server
                # "bind" a port already in use; we want a clear error instead.
                ("grpc.so_reuseport", 0),
                ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
                ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
            ]
        )
    else:
        server = RpcServer(MAX_MESSAGE_BYTES)
    add_servicers(server, services)
    address = f"{config.host}:{config.port}"
    try:
        bound = server.add_insecure_port(address)
    except RuntimeError:
        bound = 0
    if not bound:
        await store.close()
        raise StartupError(f"cannot listen on {address}: address in use or not available")
    try:
        await services.start()
    except StoreError as e:
        await store.close()
        raise StartupError(f"cannot start on store {config.store}: {e}") from None
    await server.start()
    # Handlers before the "listening" line: whoever reads it may signal us right away.
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    shown = address if config.port else f"{config.host}:{bound}"
    _tune_gc()
    print(f"cadence-fast listening on {shown} (store {config.store})", flush=True)
    if ready is not None:
        ready.set()
    await stop.wait()
    log.info("shutting down")
    # Matching answers waiting polls empty first, so server.stop() is not held by them.
    await services.matching.stop()
    await server.stop(config.shutdown_grace_seconds)
    await services.stop()
    await store.close()


def _tune_gc() -> None:
    """Fewer, cheaper collections for a long-running server.

    Every call allocates many short-lived containers (messages, tuples, coroutines) and
    CPython's default gen-0 threshold (700) collected every few calls; the objects built
    at startup (modules, protobuf descriptors) were rescanned by every full collection.
    Reference counting frees nearly everything anyway: the collector is only for cycles.
    """
    gc.collect()
    gc.freeze()  # what startup built stays out of every later collection
    gc.set_threshold(50_000, 20, 20)


def run(config: ServerConfig) -> int:
    """Blocking entry point used by the CLI; returns the exit code."""
    import uvloop

    logging.basicConfig(
        level=config.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    try:
        uvloop.run(serve(config))
    except StartupError as e:
        print(f"cadence-fast: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        pass
    return 0
