"""The native gRPC transport (`cadence_fast.transport` on `_core.h2`) against grpcio's client.

Every test serves real grpc method handlers with `RpcServer` and calls them with
grpc.aio's client (the C-core HTTP/2 stack the official Python client uses): replies,
statuses with typed details, deadlines, cancellation, flow control with large
messages both ways, many concurrent calls, graceful shutdown, and protocol errors.
"""

from __future__ import annotations

import asyncio
import socket

import grpc
import pytest
from cadence.api.v1 import error_pb2, service_meta_pb2, service_meta_pb2_grpc
from google.protobuf import any_pb2
from google.rpc import status_pb2
from grpc_status import rpc_status

from cadence_fast._core import h2
from cadence_fast.transport import RpcServer

MAX = 4 * 1024 * 1024


class Echo:
    """Handlers of the service "test.Echo" (bytes in, bytes out)."""

    def __init__(self) -> None:
        self.cancelled = asyncio.Event()
        self.started = asyncio.Event()
        self.remaining: list[float | None] = []
        self.metadata: list[tuple[tuple[str, str], ...]] = []

    async def echo(self, request: bytes, context: h2.CallContext) -> bytes:
        self.remaining.append(context.time_remaining())
        self.metadata.append(context.invocation_metadata())
        return request

    async def double(self, request: bytes, context: h2.CallContext) -> bytes:
        return request + request

    async def fail(self, request: bytes, context: h2.CallContext) -> bytes:
        detail = any_pb2.Any()
        detail.Pack(error_pb2.EntityNotExistsError(), type_url_prefix="type.googleapis.com/")
        status = status_pb2.Status(code=grpc.StatusCode.NOT_FOUND.value[0], message="no such workflow: ünïcode 100%")
        status.details.append(detail)
        await context.abort_with_status(rpc_status.to_status(status))
        raise AssertionError("unreachable")

    async def hang(self, request: bytes, context: h2.CallContext) -> bytes:
        self.started.set()
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            self.cancelled.set()
            raise
        return b""

    async def slow(self, request: bytes, context: h2.CallContext) -> bytes:
        self.started.set()
        await asyncio.sleep(0.3)
        return b"done"

    async def crash(self, request: bytes, context: h2.CallContext) -> bytes:
        raise ValueError("boom")


def _handlers(echo: Echo) -> grpc.GenericRpcHandler:
    methods = {
        name: grpc.unary_unary_rpc_method_handler(getattr(echo, name))
        for name in ("echo", "double", "fail", "hang", "slow", "crash")
    }
    return grpc.method_handlers_generic_handler("test.Echo", methods)


class Served:
    def __init__(self) -> None:
        self.echo = Echo()
        self.server = RpcServer(MAX)
        self.server.add_generic_rpc_handlers((_handlers(self.echo),))
        self.port = self.server.add_insecure_port("127.0.0.1:0")
        self.channel = grpc.aio.insecure_channel(
            f"127.0.0.1:{self.port}",
            options=[("grpc.max_receive_message_length", 64 * 1024 * 1024),
                     ("grpc.max_send_message_length", 64 * 1024 * 1024)],
        )

    def call(self, name: str) -> grpc.aio.UnaryUnaryMultiCallable:
        return self.channel.unary_unary(f"/test.Echo/{name}")

    async def __aenter__(self) -> Served:
        await self.server.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.channel.close()
        await self.server.stop(0)


async def test_unary_reply_and_metadata() -> None:
    async with Served() as s:
        assert await s.call("echo")(b"hello", metadata=(("rpc-caller", "test"),)) == b"hello"
        assert await s.call("echo")(b"") == b""
        assert ("rpc-caller", "test") in s.echo.metadata[0]
        assert s.echo.remaining[0] is None  # no deadline given


async def test_deadline_is_visible_to_the_handler() -> None:
    async with Served() as s:
        await s.call("echo")(b"x", timeout=30)
        remaining = s.echo.remaining[-1]
        assert remaining is not None and 25 < remaining <= 31  # grpc rounds the timeout up


async def test_abort_with_status_carries_code_message_and_typed_detail() -> None:
    async with Served() as s:
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await s.call("fail")(b"x")
        err = info.value
        assert err.code() == grpc.StatusCode.NOT_FOUND
        assert err.details() == "no such workflow: ünïcode 100%"
        status = rpc_status.from_call(err)  # checks code and message against the call's
        assert status is not None and status.details[0].Is(error_pb2.EntityNotExistsError.DESCRIPTOR)


async def test_unknown_method_is_unimplemented() -> None:
    async with Served() as s:
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await s.channel.unary_unary("/test.Echo/nope")(b"x")
        assert info.value.code() == grpc.StatusCode.UNIMPLEMENTED
        assert "/test.Echo/nope" in info.value.details()


async def test_handler_exception_is_unknown_and_the_connection_stays_usable() -> None:
    async with Served() as s:
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await s.call("crash")(b"x")
        assert info.value.code() == grpc.StatusCode.UNKNOWN
        assert "boom" in info.value.details()
        assert await s.call("echo")(b"still here") == b"still here"


@pytest.mark.parametrize("size", [16_383, 16_384 * 3 + 7, 70_000, 3_000_000])
async def test_large_messages_cross_flow_control_both_ways(size: int) -> None:
    payload = bytes(range(256)) * (size // 256) + b"z" * (size % 256)
    async with Served() as s:
        reply = await s.call("double")(payload)
        assert reply == payload + payload


async def test_message_over_the_limit_is_resource_exhausted() -> None:
    async with Served() as s:
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await s.call("echo")(b"x" * (MAX + 10))
        assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert await s.call("echo")(b"ok") == b"ok"


async def test_many_concurrent_calls_on_one_connection() -> None:
    async with Served() as s:
        call = s.call("echo")
        replies = await asyncio.gather(*(call(str(i).encode() * 50) for i in range(500)))
        assert replies == [str(i).encode() * 50 for i in range(500)]


async def test_client_cancel_cancels_the_handler() -> None:
    async with Served() as s:
        task = asyncio.ensure_future(s.call("hang")(b"x"))
        await asyncio.wait_for(s.echo.started.wait(), 10)
        task.cancel()
        await asyncio.wait_for(s.echo.cancelled.wait(), 10)
        assert await s.call("echo")(b"after") == b"after"


async def test_client_deadline_cancels_the_handler() -> None:
    async with Served() as s:
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await s.call("hang")(b"x", timeout=0.3)
        assert info.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        await asyncio.wait_for(s.echo.cancelled.wait(), 10)


async def test_graceful_stop_lets_the_running_call_finish() -> None:
    s = Served()
    await s.server.start()
    try:
        task = asyncio.ensure_future(s.call("slow")(b"x"))
        await asyncio.wait_for(s.echo.started.wait(), 10)
        await s.server.stop(5)
        assert await task == b"done"
    finally:
        await s.channel.close()


async def test_stop_past_grace_answers_unavailable() -> None:
    s = Served()
    await s.server.start()
    try:
        task = asyncio.ensure_future(s.call("hang")(b"x"))
        await asyncio.wait_for(s.echo.started.wait(), 10)
        await s.server.stop(0.1)
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await task
        assert info.value.code() == grpc.StatusCode.UNAVAILABLE
    finally:
        await s.channel.close()


async def test_the_generated_servicer_registration_works() -> None:
    class Meta(service_meta_pb2_grpc.MetaAPIServicer):
        async def Health(self, request: object, context: object) -> service_meta_pb2.HealthResponse:
            return service_meta_pb2.HealthResponse(ok=True, message="fine")

    server = RpcServer(MAX)
    service_meta_pb2_grpc.add_MetaAPIServicer_to_server(Meta(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            reply = await service_meta_pb2_grpc.MetaAPIStub(channel).Health(service_meta_pb2.HealthRequest())
            assert reply.ok and reply.message == "fine"
    finally:
        await server.stop(0)


async def test_a_non_http2_client_gets_goaway_and_close() -> None:
    async with Served() as s:
        loop = asyncio.get_running_loop()
        with socket.create_connection(("127.0.0.1", s.port), timeout=5) as sock:
            sock.setblocking(False)
            await loop.sock_sendall(sock, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            received = b""
            while True:
                chunk = await asyncio.wait_for(loop.sock_recv(sock, 65536), 5)
                if not chunk:
                    break
                received += chunk
        # Our SETTINGS, then a GOAWAY (type 7) with PROTOCOL_ERROR, then the close.
        assert received[3] == h2.SETTINGS
        kinds = []
        pos = 0
        while pos + 9 <= len(received):
            length = int.from_bytes(received[pos : pos + 3], "big")
            kinds.append(received[pos + 3])
            if received[pos + 3] == h2.GOAWAY:
                code = int.from_bytes(received[pos + 13 : pos + 17], "big")
                assert code == h2.PROTOCOL_ERROR
            pos += 9 + length
        assert h2.GOAWAY in kinds
        # The server is still fine for real clients.
        assert await s.call("echo")(b"ok") == b"ok"


def test_grpc_timeout_parsing() -> None:
    assert h2.parse_timeout("100m") == pytest.approx(0.1)
    assert h2.parse_timeout("2S") == 2.0
    assert h2.parse_timeout("1H") == 3600.0
    assert h2.parse_timeout("5u") == pytest.approx(5e-6)
    assert h2.parse_timeout("x") is None
    assert h2.parse_timeout("123456789S") is None
    assert h2.parse_timeout("10Q") is None


async def test_a_status_larger_than_a_frame_goes_out_in_continuation_frames() -> None:
    class Big:
        async def fail(self, request: bytes, context: h2.CallContext) -> bytes:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "x" * 6000, (("detail-bin", b"\x00\xff" * 5000),))
            raise AssertionError("unreachable")

    server = RpcServer(MAX)
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler("test.Big", {"fail": grpc.unary_unary_rpc_method_handler(Big().fail)}),)
    )
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        options = [("grpc.max_metadata_size", 1 << 20), ("grpc.absolute_max_metadata_size", 1 << 20)]
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}", options=options) as channel:
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await channel.unary_unary("/test.Big/fail")(b"x")
            assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert info.value.details() == "x" * 6000
            assert dict(info.value.trailing_metadata())["detail-bin"] == b"\x00\xff" * 5000
    finally:
        await server.stop(0)


def _curl_speaks_http2() -> bool:
    import shutil
    import subprocess

    if shutil.which("curl") is None:
        return False
    return "HTTP2" in subprocess.run(["curl", "--version"], capture_output=True, text=True).stdout


async def test_a_second_http2_implementation_nghttp2_via_curl() -> None:
    """Another client stack (nghttp2's framing and HPACK encoder) gets the same replies.

    Runs or fails, never skips: curl with nghttp2 is part of this project's machine (Debian's curl)."""
    if not _curl_speaks_http2():
        pytest.fail("this test needs curl built with nghttp2 (Debian's curl package) on PATH")
    async with Served() as s:
        message = b"ping over nghttp2"
        body = b"\x00" + len(message).to_bytes(4, "big") + message
        url = f"http://127.0.0.1:{s.port}"
        proc = await asyncio.create_subprocess_exec(
            "curl", "-sS", "--http2-prior-knowledge", "-X", "POST", "-H", "content-type: application/grpc",
            "-H", "te: trailers", "-H", "grpc-timeout: 5S", "--data-binary", "@-", "-D", "-", f"{url}/test.Echo/double",
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out, err = await proc.communicate(body)
        assert proc.returncode == 0, err
        head, _, rest = out.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/2 200") and b"content-type: application/grpc" in head
        doubled = message + message
        assert rest.startswith(b"\x00" + len(doubled).to_bytes(4, "big") + doubled)
        assert b"grpc-status: 0" in rest
        assert s.echo.remaining == []  # "double" does not record; the deadline parsed without error

        proc = await asyncio.create_subprocess_exec(
            "curl", "-sS", "--http2-prior-knowledge", "-X", "POST", "-H", "content-type: application/grpc",
            "--data-binary", "@-", "-D", "-", f"{url}/test.Echo/fail",
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out, err = await proc.communicate(body)
        assert proc.returncode == 0, err
        assert b"grpc-status: 5" in out
        assert b"grpc-message: no such workflow: %C3%BCn%C3%AFcode 100%25" in out
        assert b"grpc-status-details-bin: " in out
