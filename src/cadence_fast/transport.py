"""The frontend's gRPC server: Cadence's services on the native HTTP/2 transport.

`RpcServer` takes the servicers exactly as grpc.aio's server does — the generated
`add_*APIServicer_to_server(servicer, server)` functions call its
`add_generic_rpc_handlers` / `add_registered_method_handlers` — and serves their unary
methods with `_core.h2` (why a transport of our own: see that module). Lifecycle as
grpc.aio: `add_insecure_port`, `start`, `stop(grace)`.

`grpcio` stays the reference: `server start --transport grpcio` serves the very same
servicers with grpc.aio (for comparison, and as a fallback should a client need
something only it speaks, such as streaming or TLS).
"""

from __future__ import annotations

import asyncio
import socket
from typing import Any

from cadence_fast._core import h2


class _CallDetails:
    """What a grpc GenericRpcHandler's `service()` reads (grpc.HandlerCallDetails)."""

    __slots__ = ("method", "invocation_metadata")

    def __init__(self, method: str, invocation_metadata: tuple[tuple[str, str], ...]) -> None:
        self.method = method
        self.invocation_metadata = invocation_metadata


class RpcServer:
    """Serves grpc method handlers (unary-unary) over `_core.h2` connections."""

    def __init__(self, max_message_bytes: int) -> None:
        self.max_message = max_message_bytes
        #: path ("/package.Service/Method") -> RpcMethod; registered handlers, then found ones.
        self.methods: dict[str, h2.RpcMethod] = {}
        self._generic: list[Any] = []
        self.connections: set[Any] = set()
        self._sock: socket.socket | None = None
        self._server: asyncio.AbstractServer | None = None
        self._stopped = asyncio.Event()

    # --- what the generated add_*Servicer_to_server functions call -------------------------

    def add_generic_rpc_handlers(self, handlers: Any) -> None:
        self._generic.extend(handlers)

    def add_registered_method_handlers(self, service: str, handlers: dict[str, Any]) -> None:
        # Registered later replaces registered earlier (api.base.add_encoded_handlers relies on it).
        for name, handler in handlers.items():
            method = self._method(handler)
            if method is not None:
                self.methods[f"/{service}/{name}"] = method

    @staticmethod
    def _method(handler: Any) -> h2.RpcMethod | None:
        if handler is None or handler.unary_unary is None or handler.request_streaming or handler.response_streaming:
            return None  # streaming methods: not served here (Cadence's API has none)
        return h2.RpcMethod(handler.request_deserializer, handler.unary_unary, handler.response_serializer)

    def lookup(self, path: str, metadata: list[tuple[str, str]]) -> h2.RpcMethod | None:
        """A path no registered handler serves: ask the generic handlers (once per path)."""
        details = _CallDetails(path, tuple(metadata))
        for generic in self._generic:
            method = self._method(generic.service(details))
            if method is not None:
                self.methods[path] = method
                return method
        return None

    # --- lifecycle -----------------------------------------------------------------------------

    def add_insecure_port(self, address: str) -> int:
        """Remember where to listen; the socket is bound now so the port is known (and taken)."""
        host, _, port = address.rpartition(":")
        host = host.strip("[]") or "0.0.0.0"
        sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, int(port)))
        except OSError:
            sock.close()
            raise RuntimeError(f"cannot bind {address}") from None
        self._sock = sock
        return int(sock.getsockname()[1])

    async def start(self) -> None:
        if self._sock is None:
            raise RuntimeError("add_insecure_port() first: there is no address to serve")
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: h2.H2Connection(self), sock=self._sock, backlog=1024)

    async def stop(self, grace: float | None) -> None:
        """Stop accepting; GOAWAY every connection; calls still running after `grace` are cancelled."""
        if self._server is not None:
            self._server.close()
        for conn in list(self.connections):
            conn.goaway()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + (grace or 0.0)
        # Polled: the connections do not signal "no calls left" (it would cost every call).
        while any(conn.active_calls() for conn in self.connections) and loop.time() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.02)
        for conn in list(self.connections):
            conn.cancel_calls()
        await asyncio.sleep(0)  # let cancelled handlers write their UNAVAILABLE
        for conn in list(self.connections):
            conn.close()
        self._stopped.set()

    async def wait_for_termination(self) -> None:
        await self._stopped.wait()
