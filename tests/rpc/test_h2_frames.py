"""The native HTTP/2 transport (`_core.h2` under `RpcServer`) frame by frame.

A raw-socket HTTP/2 client built here (frames packed with struct, request headers
encoded with `_core.hpack`'s literal encoders, response header blocks decoded with
`hpack.Decoder`) checks what the official Cadence clients (grpc-core, grpc-go,
grpc-java/netty) rely on and what they may legally send even if grpcio's client never
does: the connection preface, header blocks split over CONTINUATION with padding and
priority, padded and split DATA, client trailers, interleaved streams, flow control in
both windows (and a peer's SETTINGS changing the initial window mid-reply), RST_STREAM
and lost connections cancelling handlers, connection errors (GOAWAY with RFC 9113's
error code, then close), gRPC statuses the transport produces itself, and graceful stop.
A seeded fuzz test feeds random and mutated frame sequences to `H2Connection` and checks
it never raises, never leaves a handler running, and writes only well-formed frames.

"Nothing more is sent" is proven without timing: the client sends a PING and reads up
to its ACK. The server handles frames in order and writes in order, so whatever an
earlier frame made it send arrives before that ACK.
"""

from __future__ import annotations

import asyncio
import random
import struct
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import grpc
import pytest

from cadence_fast._core import h2, hpack
from cadence_fast.transport import RpcServer

MAX = 4 * 1024 * 1024
TIMEOUT = 10.0

# Static HPACK indexes (RFC 7541 Appendix A).
_AUTHORITY = 1
_PATH = 4
_CONTENT_TYPE = 31


def frame(kind: int, flags: int, stream_id: int, payload: bytes) -> bytes:
    """An HTTP/2 frame (RFC 9113 §4.1), built independently of h2.frame."""
    return struct.pack(">I", len(payload))[1:] + struct.pack(">BBI", kind, flags, stream_id) + payload


def settings(*pairs: tuple[int, int]) -> bytes:
    return frame(h2.SETTINGS, 0, 0, b"".join(struct.pack(">HI", k, v) for k, v in pairs))


def window_update(stream_id: int, increment: int) -> bytes:
    return frame(h2.WINDOW_UPDATE, 0, stream_id, struct.pack(">I", increment))


def request_block(path: str, *extra: tuple[bytes, bytes]) -> bytes:
    """The header block of a gRPC request: :method POST, :scheme http, :path, content-type, te."""
    block = (
        b"\x83"  # :method: POST (static 3)
        + b"\x86"  # :scheme: http (static 6)
        + hpack.encode_indexed_name_literal(_PATH, path.encode())
        + hpack.encode_indexed_name_literal(_AUTHORITY, b"localhost")
        + hpack.encode_indexed_name_literal(_CONTENT_TYPE, b"application/grpc")
        + hpack.encode_literal(b"te", b"trailers")
    )
    return block + b"".join(hpack.encode_literal(n, v) for n, v in extra)


def message(data: bytes, compressed: int = 0) -> bytes:
    """A gRPC length-prefixed message."""
    return struct.pack(">BI", compressed, len(data)) + data


def unary(stream_id: int, path: str, data: bytes, *extra: tuple[bytes, bytes]) -> bytes:
    """The plainest request: HEADERS (END_HEADERS), one DATA with END_STREAM."""
    return frame(h2.HEADERS, h2.FLAG_END_HEADERS, stream_id, request_block(path, *extra)) + frame(
        h2.DATA, h2.FLAG_END_STREAM, stream_id, message(data)
    )


class Frame(NamedTuple):
    kind: int
    flags: int
    stream_id: int
    payload: bytes


def parse_frames(data: bytes) -> list[Frame]:
    """Split bytes the server wrote into frames; they must be whole, well-formed frames."""
    frames = []
    pos = 0
    while pos < len(data):
        assert len(data) - pos >= 9, "a truncated frame header"
        length = int.from_bytes(data[pos : pos + 3], "big")
        kind, flags, sid = struct.unpack_from(">BBI", data, pos + 3)
        assert not sid & 0x80000000, "the reserved bit must be 0"
        assert len(data) - pos - 9 >= length, "a truncated frame"
        frames.append(Frame(kind, flags, sid, bytes(data[pos + 9 : pos + 9 + length])))
        pos += 9 + length
    return frames


@dataclass
class Reply:
    """What one stream received: headers, DATA bytes (and frame sizes), trailers, RST_STREAM."""

    headers: list[tuple[str, str]] | None = None
    data: bytearray = field(default_factory=bytearray)
    data_frames: list[int] = field(default_factory=list)
    trailers: list[tuple[str, str]] | None = None
    rst: int | None = None
    kinds: list[int] = field(default_factory=list)

    @property
    def done(self) -> bool:
        return self.trailers is not None or self.rst is not None

    def status(self) -> int:
        fields = dict(self.trailers or ())
        return int(fields["grpc-status"])

    def message(self) -> bytes:
        assert self.data[0] == 0
        (size,) = struct.unpack_from(">I", self.data, 1)
        assert size == len(self.data) - 5
        return bytes(self.data[5:])


class Raw:
    """A raw HTTP/2 client connection: send frames, read and account frames per stream."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.decoder = hpack.Decoder(4096)
        self.replies: dict[int, Reply] = {}
        self.frames: list[Frame] = []  # every frame received, in order
        self._block: tuple[int, int, bytearray] | None = None  # header block being reassembled
        self._pings = 0

    @classmethod
    async def open(cls, port: int, *pairs: tuple[int, int], handshake: bool = True) -> Raw:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        raw = cls(reader, writer)
        if handshake:
            raw.send(h2.PREFACE, settings(*pairs))
            first = await raw.next()
            assert first is not None and first.kind == h2.SETTINGS and not first.flags & h2.FLAG_ACK
            await raw.until(lambda f: f.kind == h2.SETTINGS and bool(f.flags & h2.FLAG_ACK))
        return raw

    def send(self, *data: bytes) -> None:
        self.writer.write(b"".join(data))

    def close(self) -> None:
        self.writer.close()

    def reply(self, stream_id: int) -> Reply:
        return self.replies.setdefault(stream_id, Reply())

    async def next(self) -> Frame | None:
        """The next frame (also accounted into `replies`); None when the server closed."""
        try:
            head = await asyncio.wait_for(self.reader.readexactly(9), TIMEOUT)
            length = int.from_bytes(head[:3], "big")
            payload = await asyncio.wait_for(self.reader.readexactly(length), TIMEOUT)
        except (asyncio.IncompleteReadError, ConnectionResetError):
            return None
        kind, flags, sid = struct.unpack_from(">BBI", head, 3)
        f = Frame(kind, flags, sid, payload)
        self.frames.append(f)
        self._account(f)
        return f

    def _account(self, f: Frame) -> None:
        if self._block is not None:
            # RFC 9113 §6.10: nothing may interrupt a header block, from the server either.
            assert f.kind == h2.CONTINUATION and f.stream_id == self._block[0], f
        if f.stream_id == 0:
            return
        reply = self.reply(f.stream_id)
        reply.kinds.append(f.kind)
        assert reply.rst is None, f"{f} after RST_STREAM"
        # After the trailers, only RST_STREAM(NO_ERROR): "stop sending, the reply is complete".
        assert reply.trailers is None or (f.kind == h2.RST_STREAM and f.payload == b"\0\0\0\0"), f
        if f.kind == h2.DATA:
            assert reply.headers is not None, "DATA before HEADERS"
            reply.data += f.payload
            reply.data_frames.append(len(f.payload))
        elif f.kind == h2.HEADERS:
            self._block = (f.stream_id, f.flags, bytearray(f.payload))
        elif f.kind == h2.CONTINUATION:
            assert self._block is not None
            self._block[2].extend(f.payload)
        elif f.kind == h2.RST_STREAM:
            (reply.rst,) = struct.unpack(">I", f.payload)
        if f.kind in (h2.HEADERS, h2.CONTINUATION) and f.flags & h2.FLAG_END_HEADERS:
            assert self._block is not None
            sid, flags, block = self._block
            self._block = None
            headers = self.decoder.decode(bytes(block))
            if reply.headers is None and not flags & h2.FLAG_END_STREAM:
                reply.headers = headers
            elif reply.headers is None:  # trailers-only: one block with both
                reply.headers = reply.trailers = headers
            else:
                assert flags & h2.FLAG_END_STREAM, "trailers must end the stream"
                reply.trailers = headers

    async def until(self, predicate: Any) -> Frame:
        while True:
            f = await self.next()
            assert f is not None, "the server closed the connection"
            if predicate(f):
                return f

    async def finish(self, stream_id: int) -> Reply:
        reply = self.reply(stream_id)
        while not reply.done:
            assert await self.next() is not None, "the server closed the connection"
        return reply

    async def barrier(self) -> list[Frame]:
        """PING and read up to its ACK: the frames before it (all the server had to send)."""
        self._pings += 1
        token = struct.pack(">Q", 0xC0FFEE00 + self._pings)
        start = len(self.frames)
        self.send(frame(h2.PING, 0, 0, token))
        await self.until(lambda f: f.kind == h2.PING and f.flags & h2.FLAG_ACK and f.payload == token)
        return self.frames[start : len(self.frames) - 1]

    async def closed_with_goaway(self) -> tuple[int, int]:
        """Read to the end: there must be one GOAWAY (last stream id, error code), then the close."""
        goaway = None
        while True:
            f = await self.next()
            if f is None:
                break
            if f.kind == h2.GOAWAY:
                goaway = struct.unpack_from(">II", f.payload)
        assert goaway is not None, "no GOAWAY before the close"
        return goaway[0] & 0x7FFFFFFF, goaway[1]


class Handlers:
    """Handlers of the service "test.Raw"."""

    def __init__(self) -> None:
        self.started = asyncio.Event()
        self.started_n = 0
        self.all_started = asyncio.Event()
        self.cancelled = 0
        self.all_cancelled = asyncio.Event()
        self.expect_cancelled = 1
        self.release = asyncio.Event()

    async def echo(self, request: bytes, context: h2.CallContext) -> bytes:
        return request

    async def sized(self, request: bytes, context: h2.CallContext) -> bytes:
        """A reply of int(request) bytes."""
        n = int(request)
        return (bytes(range(256)) * (n // 256 + 1))[:n]

    async def hang(self, request: bytes, context: h2.CallContext) -> bytes:
        self.started.set()
        self.started_n += 1
        if self.started_n >= self.expect_cancelled:
            self.all_started.set()
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            self.cancelled += 1
            if self.cancelled >= self.expect_cancelled:
                self.all_cancelled.set()
            raise
        return b""

    async def gated(self, request: bytes, context: h2.CallContext) -> bytes:
        self.started.set()
        await self.release.wait()
        return b"released:" + request


def make_server(handlers: Handlers) -> RpcServer:
    server = RpcServer(MAX)
    methods = {
        name: grpc.unary_unary_rpc_method_handler(getattr(handlers, name))
        for name in ("echo", "sized", "hang", "gated")
    }
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("test.Raw", methods),))
    return server


class Served:
    def __init__(self) -> None:
        self.handlers = Handlers()
        self.server = make_server(self.handlers)
        self.port = self.server.add_insecure_port("127.0.0.1:0")
        self.raws: list[Raw] = []

    async def raw(self, *pairs: tuple[int, int], handshake: bool = True) -> Raw:
        raw = await Raw.open(self.port, *pairs, handshake=handshake)
        self.raws.append(raw)
        return raw

    async def __aenter__(self) -> Served:
        await self.server.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        for raw in self.raws:
            raw.close()
        await self.server.stop(0)


async def assert_works(s: Served, stream_id: int = 1, raw: Raw | None = None) -> None:
    """A plain echo call succeeds (on `raw`, or a fresh connection)."""
    raw = raw or await s.raw()
    raw.send(unary(stream_id, "/test.Raw/echo", b"still fine"))
    reply = await raw.finish(stream_id)
    assert reply.status() == 0 and reply.message() == b"still fine"


# --- preface, SETTINGS, PING ---------------------------------------------------------------


async def test_preface_settings_ack_and_ping() -> None:
    async with Served() as s:
        raw = await s.raw(handshake=False)
        raw.send(h2.PREFACE)
        first = await raw.next()
        # The server's preface is a SETTINGS frame, sent without waiting for ours.
        assert first is not None and first.kind == h2.SETTINGS and first.flags == 0 and first.stream_id == 0
        advertised = dict(
            struct.unpack_from(">HI", first.payload, i) for i in range(0, len(first.payload), 6)
        )
        assert advertised[h2.SETTINGS_MAX_FRAME_SIZE] == h2.RECV_MAX_FRAME
        raw.send(settings((h2.SETTINGS_INITIAL_WINDOW_SIZE, 1 << 20), (h2.SETTINGS_MAX_FRAME_SIZE, 1 << 15)))
        ack = await raw.until(lambda f: f.kind == h2.SETTINGS)
        assert ack.flags == h2.FLAG_ACK and ack.payload == b""
        raw.send(frame(h2.PING, 0, 0, b"8 bytes!"))
        pong = await raw.until(lambda f: f.kind == h2.PING)
        assert pong.flags == h2.FLAG_ACK and pong.payload == b"8 bytes!"
        # A PING ACK (and our SETTINGS ACK of the server's SETTINGS) are answered with nothing.
        raw.send(frame(h2.PING, h2.FLAG_ACK, 0, b"unasked!"), frame(h2.SETTINGS, h2.FLAG_ACK, 0, b""))
        assert await raw.barrier() == []
        await assert_works(s, raw=raw)


# --- request framing --------------------------------------------------------------------------


@pytest.mark.parametrize("client_trailers", [False, True])
async def test_split_padded_prioritized_headers_and_split_padded_data(client_trailers: bool) -> None:
    async with Served() as s:
        raw = await s.raw()
        block = request_block("/test.Raw/echo", (b"rpc-caller", b"raw"))
        a, b, c = block[:7], block[7:20], block[20:]
        pad = 3
        first = bytes((pad,)) + struct.pack(">IB", 0x80000000 | 0, 200) + a + b"\x00" * pad
        payload = bytes(range(200)) * 5
        body = message(payload)
        chunks = [body[:1], body[1:300], body[300:301], body[301:]]
        frames = [
            frame(h2.HEADERS, h2.FLAG_PADDED | h2.FLAG_PRIORITY, 1, first),
            frame(h2.CONTINUATION, 0, 1, b""),  # empty CONTINUATION frames are legal
            frame(h2.CONTINUATION, 0, 1, b),
            frame(h2.CONTINUATION, h2.FLAG_END_HEADERS, 1, c),
            frame(h2.DATA, 0, 1, chunks[0]),
            frame(h2.DATA, h2.FLAG_PADDED, 1, bytes((9,)) + chunks[1] + b"\x00" * 9),
            frame(h2.DATA, h2.FLAG_PADDED, 1, b"\x00" + chunks[2]),  # pad length 0
            frame(h2.DATA, 0, 1, b""),
        ]
        if client_trailers:
            frames.append(frame(h2.DATA, 0, 1, chunks[3]))
            trailer = hpack.encode_literal(b"x-client-trailer", b"1")
            frames.append(frame(h2.HEADERS, h2.FLAG_END_HEADERS | h2.FLAG_END_STREAM, 1, trailer))
        else:
            frames.append(
                frame(h2.DATA, h2.FLAG_END_STREAM | h2.FLAG_PADDED, 1, b"\x02" + chunks[3] + b"\x00\x00")
            )
        # Byte by byte for the header block: the parser must resume anywhere inside a frame.
        wire = b"".join(frames)
        for i in range(0, 200):
            raw.send(wire[i : i + 1])
            if i % 16 == 0:
                await asyncio.sleep(0)  # the server (same loop) reads what arrived so far
        raw.send(wire[200:])
        reply = await raw.finish(1)
        assert reply.headers is not None
        assert (":status", "200") in reply.headers and ("content-type", "application/grpc") in reply.headers
        assert reply.status() == 0 and reply.message() == payload
        assert reply.kinds[0] == h2.HEADERS and reply.kinds[len(reply.kinds) - 1] == h2.HEADERS
        assert reply.rst is None


async def test_interleaved_streams_are_answered_each_on_its_own_stream() -> None:
    async with Served() as s:
        raw = await s.raw()
        payloads = {sid: f"stream {sid} ".encode() * (sid + 3) for sid in (1, 3, 5, 7)}
        bodies = {sid: message(p) for sid, p in payloads.items()}
        for sid in payloads:
            raw.send(frame(h2.HEADERS, h2.FLAG_END_HEADERS, sid, request_block("/test.Raw/echo")))
        # First halves in one order, second halves (ending each stream) in another.
        for sid in (5, 1, 7, 3):
            raw.send(frame(h2.DATA, 0, sid, bodies[sid][:10]))
        for sid in (3, 7, 1, 5):
            raw.send(frame(h2.DATA, h2.FLAG_END_STREAM, sid, bodies[sid][10:]))
        for sid, p in payloads.items():
            reply = await raw.finish(sid)
            assert reply.status() == 0 and reply.message() == p
        # Stream ids may skip numbers; the next one still works.
        await assert_works(s, 101, raw)


# --- flow control -------------------------------------------------------------------------------


async def test_replies_respect_stream_and_connection_windows() -> None:
    async with Served() as s:
        raw = await s.raw((h2.SETTINGS_INITIAL_WINDOW_SIZE, 10))
        size = 100_000
        raw.send(unary(1, "/test.Raw/sized", str(size).encode()))
        reply = raw.reply(1)
        while len(reply.data) < 10:
            assert await raw.next() is not None
        await raw.barrier()
        assert len(reply.data) == 10 and not reply.done  # the stream window: 10 bytes
        # The stream window opens wide; the connection window (65535) is now the limit.
        raw.send(window_update(1, 1 << 20))
        while len(reply.data) < 65_535:
            assert await raw.next() is not None
        await raw.barrier()
        assert len(reply.data) == 65_535 and not reply.done
        assert max(reply.data_frames) <= 16_384  # our SETTINGS left the max frame size at its default
        raw.send(window_update(0, 20_000))
        while len(reply.data) < 85_535:
            assert await raw.next() is not None
        await raw.barrier()
        assert len(reply.data) == 85_535 and not reply.done
        raw.send(window_update(0, 1 << 20))
        await raw.finish(1)
        assert reply.status() == 0 and len(reply.message()) == size
        assert reply.kinds[len(reply.kinds) - 1] == h2.HEADERS  # the trailers come last
        # The connection is fine afterwards (windows accounted, not wedged).
        raw.send(window_update(0, 1 << 20))
        raw.send(settings((h2.SETTINGS_INITIAL_WINDOW_SIZE, 1 << 20)))
        await assert_works(s, 3, raw)


async def test_initial_window_change_mid_reply_is_honoured() -> None:
    async with Served() as s:
        raw = await s.raw((h2.SETTINGS_INITIAL_WINDOW_SIZE, 10))
        raw.send(unary(1, "/test.Raw/sized", b"200"))  # 205 bytes of DATA
        reply = raw.reply(1)
        while len(reply.data) < 10:
            assert await raw.next() is not None
        # Negative delta: the window of the open stream drops to 0 - 10 = -10 (RFC 9113 §6.9.2).
        raw.send(settings((h2.SETTINGS_INITIAL_WINDOW_SIZE, 0)))
        raw.send(window_update(1, 15))  # -10 + 15 = 5
        before = await raw.barrier()
        assert any(f.kind == h2.SETTINGS and f.flags & h2.FLAG_ACK for f in before)
        assert len(reply.data) == 15 and not reply.done
        # Positive delta: 0 -> 100 adds 100 to the open stream's window.
        raw.send(settings((h2.SETTINGS_INITIAL_WINDOW_SIZE, 100)))
        await raw.barrier()
        assert len(reply.data) == 115 and not reply.done
        raw.send(settings((h2.SETTINGS_INITIAL_WINDOW_SIZE, 1000)))
        await raw.finish(1)
        assert reply.status() == 0 and len(reply.message()) == 200


async def test_stream_window_overflow_resets_only_that_stream() -> None:
    async with Served() as s:
        raw = await s.raw((h2.SETTINGS_INITIAL_WINDOW_SIZE, 0))
        raw.send(unary(1, "/test.Raw/hang", b"x"))
        await asyncio.wait_for(s.handlers.started.wait(), TIMEOUT)
        raw.send(window_update(1, h2.MAX_WINDOW))
        raw.send(window_update(1, 1))  # above 2^31-1: a stream error (RFC 9113 §6.9.1)
        reply = await raw.finish(1)
        assert reply.rst == h2.FLOW_CONTROL_ERROR and reply.headers is None
        await asyncio.wait_for(s.handlers.all_cancelled.wait(), TIMEOUT)
        raw.send(settings((h2.SETTINGS_INITIAL_WINDOW_SIZE, 1 << 16)))  # else stream 3 gets no DATA
        await assert_works(s, 3, raw)


# --- cancellation ------------------------------------------------------------------------------


async def test_rst_stream_cancels_the_handler_and_silences_the_stream() -> None:
    async with Served() as s:
        raw = await s.raw()
        raw.send(unary(1, "/test.Raw/hang", b"x"))
        await asyncio.wait_for(s.handlers.started.wait(), TIMEOUT)
        raw.send(frame(h2.RST_STREAM, 0, 1, struct.pack(">I", h2.CANCEL)))
        await asyncio.wait_for(s.handlers.all_cancelled.wait(), TIMEOUT)
        # Late frames of the reset stream are dropped, not errors (RFC 9113 §5.1 "closed").
        raw.send(frame(h2.DATA, 0, 1, b"late"), window_update(1, 100))
        await raw.barrier()
        await assert_works(s, 3, raw)
        assert [f for f in raw.frames if f.stream_id == 1] == []


async def test_a_lost_connection_cancels_every_running_handler() -> None:
    async with Served() as s:
        s.handlers.expect_cancelled = 3
        raw = await s.raw()
        for sid in (1, 3, 5):
            raw.send(unary(sid, "/test.Raw/hang", b"x"))
        # A handler task cancelled before it ran would never see the cancel: wait for all three.
        await asyncio.wait_for(s.handlers.all_started.wait(), TIMEOUT)
        raw.close()
        await asyncio.wait_for(s.handlers.all_cancelled.wait(), TIMEOUT)
        assert s.handlers.cancelled == 3
        await assert_works(s)


# --- connection errors --------------------------------------------------------------------------

_HEADERS_1 = frame(h2.HEADERS, h2.FLAG_END_HEADERS, 1, request_block("/test.Raw/echo"))

PROTOCOL_ERRORS = {
    "data-on-stream-0": (frame(h2.DATA, 0, 0, b"x"), h2.PROTOCOL_ERROR),
    "headers-on-even-stream": (frame(h2.HEADERS, h2.FLAG_END_HEADERS, 2, request_block("/test.Raw/echo")), h2.PROTOCOL_ERROR),
    "headers-on-stream-0": (frame(h2.HEADERS, h2.FLAG_END_HEADERS, 0, request_block("/test.Raw/echo")), h2.PROTOCOL_ERROR),
    "continuation-without-headers": (frame(h2.CONTINUATION, h2.FLAG_END_HEADERS, 1, b"\x83"), h2.PROTOCOL_ERROR),
    "ping-inside-header-block": (
        frame(h2.HEADERS, 0, 1, b"\x83") + frame(h2.PING, 0, 0, b"12345678"), h2.PROTOCOL_ERROR),
    "unknown-frame-inside-header-block": (
        frame(h2.HEADERS, 0, 1, b"\x83") + frame(0xBB, 0, 0, b""), h2.PROTOCOL_ERROR),
    "continuation-of-another-stream": (
        frame(h2.HEADERS, 0, 1, b"\x83") + frame(h2.CONTINUATION, h2.FLAG_END_HEADERS, 3, b"\x86"), h2.PROTOCOL_ERROR),
    "settings-length-not-multiple-of-6": (frame(h2.SETTINGS, 0, 0, b"\x00\x04\x00\x00\x10"), h2.FRAME_SIZE_ERROR),
    "settings-ack-with-payload": (frame(h2.SETTINGS, h2.FLAG_ACK, 0, struct.pack(">HI", 4, 1)), h2.FRAME_SIZE_ERROR),
    "settings-on-a-stream": (frame(h2.SETTINGS, 0, 1, b""), h2.PROTOCOL_ERROR),
    "settings-initial-window-too-large": (settings((h2.SETTINGS_INITIAL_WINDOW_SIZE, 1 << 31)), h2.FLOW_CONTROL_ERROR),
    "settings-max-frame-too-small": (settings((h2.SETTINGS_MAX_FRAME_SIZE, 100)), h2.PROTOCOL_ERROR),
    "ping-of-7-bytes": (frame(h2.PING, 0, 0, b"1234567"), h2.FRAME_SIZE_ERROR),
    "ping-on-a-stream": (frame(h2.PING, 0, 1, b"12345678"), h2.PROTOCOL_ERROR),
    "window-update-0-on-the-connection": (window_update(0, 0), h2.PROTOCOL_ERROR),
    "window-update-of-3-bytes": (frame(h2.WINDOW_UPDATE, 0, 0, b"\x00\x00\x01"), h2.FRAME_SIZE_ERROR),
    "connection-window-overflow": (window_update(0, h2.MAX_WINDOW), h2.FLOW_CONTROL_ERROR),
    "rst-stream-on-stream-0": (frame(h2.RST_STREAM, 0, 0, b"\x00\x00\x00\x08"), h2.PROTOCOL_ERROR),
    "rst-stream-of-3-bytes": (frame(h2.RST_STREAM, 0, 1, b"\x00\x00\x08"), h2.FRAME_SIZE_ERROR),
    "push-promise": (frame(h2.PUSH_PROMISE, h2.FLAG_END_HEADERS, 1, b"\x00\x00\x00\x02\x83"), h2.PROTOCOL_ERROR),
    "frame-above-our-max-frame-size": (
        struct.pack(">I", h2.RECV_MAX_FRAME + 1)[1:] + bytes((h2.DATA, 0, 0, 0, 0, 1)) + b"x" * 100, h2.FRAME_SIZE_ERROR),
    "padding-exceeds-the-frame": (
        _HEADERS_1 + frame(h2.DATA, h2.FLAG_PADDED, 1, b"\x05abc"), h2.PROTOCOL_ERROR),
    "hpack-index-past-the-table": (frame(h2.HEADERS, h2.FLAG_END_HEADERS, 1, b"\xff\x7f"), h2.COMPRESSION_ERROR),
    "hpack-index-0": (frame(h2.HEADERS, h2.FLAG_END_HEADERS, 1, b"\x80"), h2.COMPRESSION_ERROR),
    "hpack-truncated-literal": (frame(h2.HEADERS, h2.FLAG_END_HEADERS, 1, b"\x00\x05ab"), h2.COMPRESSION_ERROR),
    "hpack-table-size-above-limit": (frame(h2.HEADERS, h2.FLAG_END_HEADERS, 1, b"\x3f\xe1\x7f"), h2.COMPRESSION_ERROR),
    "hpack-garbage": (frame(h2.HEADERS, h2.FLAG_END_HEADERS, 1, bytes(range(255, 200, -3))), h2.COMPRESSION_ERROR),
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(PROTOCOL_ERRORS))
async def test_protocol_error_gets_goaway_with_its_code_and_a_close(name: str) -> None:
    wire, code = PROTOCOL_ERRORS[name]
    async with Served() as s:
        raw = await s.raw()
        raw.send(wire)
        last, got = await raw.closed_with_goaway()
        assert got == code, f"{name}: error code {got}, expected {code}"
        assert last in (0, 1)
        await assert_works(s)  # the server itself is fine


@pytest.mark.parametrize(
    "preface", [b"GET / HTTP/1.1\r\n\r\n", b"PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n", b"\x00" * 30]
)
async def test_a_bad_preface_gets_goaway_protocol_error(preface: bytes) -> None:
    async with Served() as s:
        raw = await s.raw(handshake=False)
        raw.send(preface)
        last, code = await raw.closed_with_goaway()
        assert (last, code) == (0, h2.PROTOCOL_ERROR)
        assert raw.frames[0].kind == h2.SETTINGS
        await assert_works(s)


async def test_the_goaway_of_an_error_names_the_last_stream_processed() -> None:
    async with Served() as s:
        raw = await s.raw()
        raw.send(unary(1, "/test.Raw/echo", b"a"), unary(7, "/test.Raw/echo", b"b"))
        await raw.finish(7)
        raw.send(frame(h2.DATA, 0, 0, b"x"))
        assert await raw.closed_with_goaway() == (7, h2.PROTOCOL_ERROR)


async def test_unknown_frame_types_and_flags_are_ignored() -> None:
    async with Served() as s:
        raw = await s.raw()
        raw.send(frame(0xBB, 0xFF, 0, b"whatever"), frame(0x0A, 0, 1, b"altsvc-ish"))
        raw.send(frame(h2.HEADERS, h2.FLAG_END_HEADERS | 0x40, 1, request_block("/test.Raw/echo")))
        raw.send(frame(0xBB, 0, 1, b"between"), frame(h2.PRIORITY, 0, 1, struct.pack(">IB", 0, 7)))
        raw.send(frame(h2.DATA, h2.FLAG_END_STREAM | 0x80, 1, message(b"unknown ignored")))
        reply = await raw.finish(1)
        assert reply.status() == 0 and reply.message() == b"unknown ignored"


async def test_a_header_with_an_empty_name_does_not_break_the_connection() -> None:
    async with Served() as s:
        raw = await s.raw()
        block = request_block("/test.Raw/echo") + hpack.encode_literal(b"", b"odd")
        raw.send(
            frame(h2.HEADERS, h2.FLAG_END_HEADERS, 1, block),
            frame(h2.DATA, h2.FLAG_END_STREAM, 1, message(b"e")),
        )
        reply = await raw.finish(1)
        assert reply.status() == 0 and reply.message() == b"e"
        await assert_works(s, 3, raw)


# --- statuses of the transport itself ------------------------------------------------------------


async def test_statuses_the_transport_answers_itself() -> None:
    async with Served() as s:
        raw = await s.raw()
        cases: list[tuple[bytes, int, str]] = [
            (unary(1, "/test.Raw/nope", b"x"), grpc.StatusCode.UNIMPLEMENTED.value[0], "/test.Raw/nope"),
            (
                frame(h2.HEADERS, h2.FLAG_END_HEADERS, 3, request_block("/test.Raw/echo", (b"grpc-encoding", b"gzip")))
                + frame(h2.DATA, h2.FLAG_END_STREAM, 3, message(b"\x1f\x8b", compressed=1)),
                grpc.StatusCode.UNIMPLEMENTED.value[0], "gzip",
            ),
            (
                frame(h2.HEADERS, h2.FLAG_END_HEADERS, 5, request_block("/test.Raw/echo"))
                + frame(h2.DATA, h2.FLAG_END_STREAM, 5, message(b"one") + message(b"two")),
                grpc.StatusCode.INTERNAL.value[0], "one message",
            ),
            (
                frame(h2.HEADERS, h2.FLAG_END_HEADERS, 7, request_block("/test.Raw/echo"))
                + frame(h2.DATA, h2.FLAG_END_STREAM, 7, message(b"truncated")[:8]),
                grpc.StatusCode.INTERNAL.value[0], "one message",
            ),
            (
                frame(h2.HEADERS, h2.FLAG_END_HEADERS | h2.FLAG_END_STREAM, 9, request_block("/test.Raw/echo")),
                grpc.StatusCode.INTERNAL.value[0], "no message",
            ),
            (unary(11, "/test.Raw/echo", b"x", (b"grpc-timeout", b"soon")), grpc.StatusCode.INTERNAL.value[0], "grpc-timeout"),
            (unary(13, "/test.Raw/echo", b"x", (b"grpc-timeout", b"123456789S")), grpc.StatusCode.INTERNAL.value[0], "grpc-timeout"),
            (unary(15, "/test.Raw/echo", b"x", (b"grpc-timeout", b"1\xb2S")), grpc.StatusCode.INTERNAL.value[0], "grpc-timeout"),
        ]  # fmt: skip
        for wire, code, text in cases:
            raw.send(wire)
            sid = parse_frames(wire)[0].stream_id
            reply = await raw.finish(sid)
            # Trailers-only: one HEADERS with END_STREAM, :status 200, content-type and the status.
            assert reply.kinds == [h2.HEADERS], (sid, reply.kinds)
            assert reply.headers is reply.trailers
            fields = dict(reply.trailers or ())
            assert fields[":status"] == "200" and fields["content-type"] == "application/grpc"
            assert reply.status() == code, (sid, fields)
            assert text in fields.get("grpc-message", ""), (sid, fields)
        await assert_works(s, 17, raw)


async def test_an_early_answer_resets_the_unfinished_request_side() -> None:
    async with Served() as s:
        raw = await s.raw()
        # A request over the message limit is answered before it ends: trailers-only
        # RESOURCE_EXHAUSTED, then RST_STREAM(NO_ERROR) so the client stops sending
        # (RFC 9113 §8.1); what it still sends on that stream is dropped.
        raw.send(frame(h2.HEADERS, h2.FLAG_END_HEADERS, 1, request_block("/test.Raw/echo")))
        body = message(b"x" * (MAX + 10))
        for pos in range(0, len(body), 1 << 20):
            raw.send(frame(h2.DATA, 0, 1, body[pos : pos + (1 << 20)]))
        reply = await raw.finish(1)
        assert reply.status() == grpc.StatusCode.RESOURCE_EXHAUSTED.value[0]
        # WINDOW_UPDATEs for the body received so far, then the trailers-only reply.
        assert [k for k in reply.kinds if k != h2.WINDOW_UPDATE] == [h2.HEADERS]
        assert (await raw.until(lambda f: f.stream_id == 1)).kind == h2.RST_STREAM
        assert reply.rst == h2.NO_ERROR
        raw.send(frame(h2.DATA, 0, 1, b"late"), frame(h2.DATA, h2.FLAG_END_STREAM, 1, b"later"))
        await assert_works(s, 3, raw)


# --- graceful stop ---------------------------------------------------------------------------------


async def test_graceful_stop_goaway_refuses_new_streams_and_finishes_the_running_call() -> None:
    s = Served()
    await s.server.start()
    raw = await s.raw()
    try:
        raw.send(unary(1, "/test.Raw/gated", b"a"), unary(3, "/test.Raw/echo", b"b"))
        await asyncio.wait_for(s.handlers.started.wait(), TIMEOUT)
        await raw.finish(3)
        stopping = asyncio.ensure_future(s.server.stop(TIMEOUT))
        goaway = await raw.until(lambda f: f.kind == h2.GOAWAY)
        assert struct.unpack(">II", goaway.payload[:8]) == (3, h2.NO_ERROR)
        raw.send(unary(5, "/test.Raw/echo", b"too late"))
        refused = await raw.finish(5)
        assert refused.rst == h2.REFUSED_STREAM and refused.headers is None
        assert not stopping.done()
        s.handlers.release.set()
        reply = await raw.finish(1)
        assert reply.status() == 0 and reply.message() == b"released:a"
        await asyncio.wait_for(stopping, TIMEOUT)
        assert await raw.next() is None  # then the server closes the connection
    finally:
        raw.close()
        await s.server.stop(0)


# --- fuzz ------------------------------------------------------------------------------------------


class FakeTransport:
    """Just enough of an asyncio transport for H2Connection: records writes, closes like asyncio."""

    def __init__(self, conn: Any) -> None:
        self.conn = conn
        self.written = bytearray()
        self.closing = False
        self.writes_after_close = 0

    def write(self, data: bytes) -> None:
        if self.closing:
            self.writes_after_close += 1
        self.written += data

    def close(self) -> None:
        if not self.closing:
            self.closing = True
            asyncio.get_running_loop().call_soon(self.conn.connection_lost, None)

    def is_closing(self) -> bool:
        return self.closing

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 40000) if name == "peername" else default


def _valid_sequence(rng: random.Random) -> list[bytes]:
    """A random valid client conversation after the preface: frames, one list item each."""
    out = [settings((h2.SETTINGS_INITIAL_WINDOW_SIZE, rng.choice([0, 10, 1000, 65535])))]
    sid = 1
    for _ in range(rng.randint(1, 5)):
        path = rng.choice(["/test.Raw/echo", "/test.Raw/hang", "/test.Raw/sized", "/test.Raw/nope"])
        data = b"300" if path.endswith("sized") else rng.randbytes(rng.randint(0, 40))
        # Sometimes a grpc-timeout: valid, or digit-like latin-1 (HPACK values are bytes; "²" is
        # a str.isdigit() digit that int() rejects).
        digits = bytes(rng.choice(b"19\xb2\xb9 ") for _ in range(rng.randint(0, 9)))
        timeout = rng.choice([b"5S", b"100m", digits + bytes((rng.choice(b"SmuHX"),))])
        block = request_block(path, *([(b"grpc-timeout", timeout)] if rng.random() < 0.3 else []))
        cut = rng.randint(0, len(block))
        if rng.random() < 0.5:
            out.append(frame(h2.HEADERS, 0, sid, block[:cut]))
            out.append(frame(h2.CONTINUATION, h2.FLAG_END_HEADERS, sid, block[cut:]))
        else:
            out.append(frame(h2.HEADERS, h2.FLAG_END_HEADERS, sid, block))
        body = message(data)
        cut = rng.randint(0, len(body))
        out.append(frame(h2.DATA, 0, sid, body[:cut]))
        out.append(frame(h2.DATA, h2.FLAG_END_STREAM, sid, body[cut:]))
        extra = rng.choice([
            frame(h2.PING, 0, 0, rng.randbytes(8)),
            window_update(0, rng.randint(1, 1 << 20)),
            window_update(sid, rng.randint(1, 1 << 20)),
            frame(h2.RST_STREAM, 0, sid, struct.pack(">I", h2.CANCEL)),
            settings((h2.SETTINGS_INITIAL_WINDOW_SIZE, rng.randint(0, 1 << 20))),
            frame(h2.PRIORITY, 0, sid, struct.pack(">IB", 0, 16)),
        ])  # fmt: skip
        out.append(extra)
        sid += 2 * rng.randint(1, 3)
    return out


def _mutate(rng: random.Random, frames: list[bytes]) -> bytes:
    frames = list(frames)
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(6)
        i = rng.randrange(len(frames))
        f = bytearray(frames[i])
        if op == 0 and f:  # flip a byte (header or payload)
            j = rng.randrange(len(f))
            f[j] ^= 1 << rng.randrange(8)
            frames[i] = bytes(f)
        elif op == 1 and len(f) > 4:  # set the frame type or flags to anything
            f[rng.choice([3, 4])] = rng.randrange(256)
            frames[i] = bytes(f)
        elif op == 2:  # drop a frame
            del frames[i]
            if not frames:
                frames.append(b"")
        elif op == 3:  # duplicate a frame
            frames.insert(i, frames[i])
        elif op == 4:  # swap two frames
            j = rng.randrange(len(frames))
            frames[i], frames[j] = frames[j], frames[i]
        else:  # random bytes in between
            frames.insert(i, rng.randbytes(rng.randint(1, 20)))
    return b"".join(frames)


async def _feed(server: RpcServer, rng: random.Random, wire: bytes) -> FakeTransport:
    conn = h2.H2Connection(server)
    transport = FakeTransport(conn)
    conn.connection_made(transport)
    pos = 0
    while pos < len(wire):  # in random chunks, with loop iterations (handlers run) between some
        n = rng.randint(1, 64)
        conn.data_received(wire[pos : pos + n])  # must never raise
        pos += n
        if rng.random() < 0.3:
            await asyncio.sleep(0)
    for _ in range(3):
        await asyncio.sleep(0)
    transport.close()
    for _ in range(5):
        await asyncio.sleep(0)
    return transport


async def test_fuzz_random_and_mutated_frames_never_break_the_server() -> None:
    rng = random.Random(20240611)
    handlers = Handlers()
    server = make_server(handlers)
    me = asyncio.current_task()
    errors: list[dict] = []
    asyncio.get_running_loop().set_exception_handler(lambda loop, ctx: errors.append(ctx))
    for case in range(400):
        if case % 4 == 0:
            wire = h2.PREFACE + rng.randbytes(rng.randint(0, 300))
        elif case % 4 == 1:
            wire = h2.PREFACE + b"".join(_valid_sequence(rng))  # unmutated: must be clean
        else:
            wire = h2.PREFACE + _mutate(rng, _valid_sequence(rng))
        transport = await _feed(server, rng, wire)
        written = parse_frames(bytes(transport.written))
        assert written and written[0].kind == h2.SETTINGS, case
        assert transport.writes_after_close == 0, case
        goaways = [f for f in written if f.kind == h2.GOAWAY]
        if case % 4 == 1:
            assert goaways == [], (case, goaways)
        leftover = [t for t in asyncio.all_tasks() if t is not me and not t.done()]
        assert leftover == [], (case, leftover)
        assert not server.connections, case
    assert errors == []

    # Over real sockets too: the server answers a fresh connection after each bad one.
    async with Served() as s:
        for case in range(12):
            raw = await s.raw(handshake=False)
            raw.send(h2.PREFACE + (_mutate(rng, _valid_sequence(rng)) if case % 2 else rng.randbytes(200)))
            raw.writer.write_eof()
            while await raw.next() is not None:
                pass
            await assert_works(s)
        for _ in range(50):
            if not any(c.active_calls() for c in s.server.connections):
                break
            await asyncio.sleep(0.02)
        assert [t for t in asyncio.all_tasks() if t is not me and not t.done()] == []
    assert errors == []


async def test_stop_past_grace_answers_unavailable_before_closing() -> None:
    s = Served()
    await s.server.start()
    raw = await s.raw()
    try:
        raw.send(unary(1, "/test.Raw/hang", b"x"))
        await asyncio.wait_for(s.handlers.started.wait(), TIMEOUT)
        await s.server.stop(0.05)
        # The cancelled handler's status is written before the close (grpcio's client would
        # report UNAVAILABLE for a bare close too; this client sees the frames).
        reply = await raw.finish(1)
        assert reply.status() == grpc.StatusCode.UNAVAILABLE.value[0]
        assert await raw.next() is None
        assert s.handlers.cancelled == 1
    finally:
        raw.close()
        await s.server.stop(0)
