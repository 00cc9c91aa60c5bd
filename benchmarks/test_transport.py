"""The native gRPC transport's hot path (`_core.h2` + `_core.hpack`) without sockets, compiled and pure.

Three shapes, each asserting once (never on time) that the bytes written parse back into
the expected HTTP/2 frames:
- one unary call through `H2Connection`: the client's HEADERS (an HPACK block as grpc-core
  sends it once the first request filled the dynamic table: indexed fields and one literal,
  grpc-timeout) and one DATA frame with a 100-byte message are fed to `data_received` of a
  connection whose transport is a fake collecting writes; the handler echoes the message;
  the loop runs until the reply is written. 1,000 sequential calls per round on one
  connection, so the figure per call is the round's time / 1,000;
- HPACK decoding of a request block: the first request of a connection (every field a
  Huffman-coded literal with incremental indexing, the block of the `hpack` package's
  Encoder in tests/rpc/test_hpack.py) and a later one (indexed); 1,000 blocks per round;
- reply assembly (`H2Connection.send_reply`) of a 10 KB and a 1 MB response: windows large
  enough for everything (the reply goes out in 16 KB DATA frames, the default
  SETTINGS_MAX_FRAME_SIZE that grpc-core keeps) vs. an 8 KB stream window that the client
  replenishes with one WINDOW_UPDATE per 8 KB received (DATA split at 8 KB, one
  `data_received` per frame). Each reply is written on its own (the connection's flush runs
  after each, as the loop runs it at low load). 100 replies per round for 10 KB, one for 1 MB.

The pure build of h2 is given the pure build of hpack (its `hpack` global), so `pure` is
the whole transport uncompiled, as CADENCE_FAST_PURE=1 runs it.
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Callable
from types import ModuleType
from typing import Any

import pytest
from support import core_module

CALLS = 1_000  # unary calls (and HPACK blocks) per round
PATH = "/uber.cadence.api.v1.WorkerAPI/PollForDecisionTask"
MESSAGE = bytes(range(100))  # the request message; the handler echoes it

# --- client bytes ----------------------------------------------------------------------------

# The first request of a connection as the `hpack` package's Encoder codes it (Huffman,
# incremental indexing of every field but :method/:scheme): tests/rpc/test_hpack.py,
# _ENCODER_BLOCKS[0].
FIRST_BLOCK = bytes.fromhex(
    "838644a562d8cb62e41c85a8855c75997ee15f91ecea5b21d7918d67a28c27b2f9486418f56f1a3aff418a"
    "089d5c0b8170dc75e6595f8b1d75d0620d263d4c4d65647a8a9acac8b4c7602bb6d2e04082497f864d8335"
    "05b11f40899acac8b24d494f6a7f856df7df7e9f4088b2b22c82d9dcc42f8b20e42d442ad2d87a925aa440"
    "87b2b22c41d1416c8a20e42d442ac4a0c5a93f4089b2b22c5a88790d54df84aec3a4ff408d20e42d442ac4"
    "a0c5a92b543a4b85b632d8b4c7409520e42d442ac4a0c5a92b5068ec1d9e96ee5b1063d5840ae25ddf4095"
    "20e42d442ac4a0c5a92b4a51a6db0ab772d8831eaf840aeeae0f"
)
REQUEST_HEADERS = [
    (":method", "POST"),
    (":scheme", "http"),
    (":path", PATH),
    (":authority", "127.0.0.1:7833"),
    ("content-type", "application/grpc"),
    ("user-agent", "grpc-go/1.54.0"),
    ("te", "trailers"),
    ("grpc-timeout", "59999m"),
    ("rpc-service", "cadence-frontend"),
    ("rpc-caller", "cadence-client"),
    ("rpc-encoding", "proto"),
    ("cadence-client-name", "uber-go"),
    ("cadence-client-library-version", "1.2.7"),
    ("cadence-client-feature-version", "1.7.0"),
]
LATER_TIMEOUT = "9998m"


def _later_block() -> bytes:
    """A later request's block: every field indexed (static or dynamic, the table as FIRST_BLOCK
    left it), grpc-timeout a literal without indexing of an indexed name. It leaves the dynamic
    table unchanged, so the same block decodes identically on every call."""
    # FIRST_BLOCK indexed its fields 3..14 in order: the newest (index 62) is the last one.
    dynamic = [h for h in REQUEST_HEADERS if h[0] not in (":method", ":scheme")]
    index = {h: 62 + i for i, h in enumerate(reversed(dynamic))}
    # The encoders of the source (pure) module: building the input is not what is measured.
    hpack = core_module("hpack", "pure")
    parts = []
    for h in REQUEST_HEADERS:
        if h == (":method", "POST"):
            parts.append(b"\x83")
        elif h == (":scheme", "http"):
            parts.append(b"\x86")
        elif h[0] == "grpc-timeout":
            value = LATER_TIMEOUT.encode()
            parts.append(hpack.encode_indexed_name_literal(index[h], value))
        else:
            parts.append(hpack.encode_int(index[h], 7, 0x80))
    return b"".join(parts)


LATER_BLOCK = _later_block()
LATER_HEADERS = [
    ("grpc-timeout", LATER_TIMEOUT) if n == "grpc-timeout" else (n, v) for n, v in REQUEST_HEADERS
]

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DATA, HEADERS, RST_STREAM, SETTINGS, PING, GOAWAY, WINDOW_UPDATE, CONTINUATION = 0, 1, 3, 4, 6, 7, 8, 9
END_STREAM, END_HEADERS, ACK = 0x1, 0x4, 0x1
MAX_WINDOW = 2**31 - 1


def frame(kind: int, flags: int, stream_id: int, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload))[1:] + bytes((kind, flags)) + struct.pack(">I", stream_id) + payload


def client_start(initial_window: int) -> bytes:
    """Preface, SETTINGS (the client's stream window), the connection window opened to 2^31-1."""
    return (
        PREFACE
        + frame(SETTINGS, 0, 0, struct.pack(">HI", 0x4, initial_window))
        + frame(WINDOW_UPDATE, 0, 0, struct.pack(">I", MAX_WINDOW - 65535))
    )


def request(stream_id: int, block: bytes, message: bytes = MESSAGE) -> bytes:
    """HEADERS (END_HEADERS) then one DATA frame (END_STREAM) with a gRPC length-prefixed message."""
    return frame(HEADERS, END_HEADERS, stream_id, block) + frame(
        DATA, END_STREAM, stream_id, b"\x00" + struct.pack(">I", len(message)) + message
    )


def window_update(stream_id: int, increment: int) -> bytes:
    return frame(WINDOW_UPDATE, 0, stream_id, struct.pack(">I", increment))


# --- frames out ------------------------------------------------------------------------------


def parse_frames(data: bytes) -> list[tuple[int, int, int, bytes]]:
    """(type, flags, stream id, payload) of every frame in `data`, which must end on a frame boundary."""
    frames = []
    pos = 0
    while pos < len(data):
        assert len(data) - pos >= 9, "truncated frame header"
        n = int.from_bytes(data[pos : pos + 3], "big")
        kind, flags = data[pos + 3], data[pos + 4]
        sid = int.from_bytes(data[pos + 5 : pos + 9], "big") & 0x7FFFFFFF
        assert len(data) - pos - 9 >= n, "truncated frame payload"
        frames.append((kind, flags, sid, bytes(data[pos + 9 : pos + 9 + n])))
        pos += 9 + n
    return frames


def check_reply(
    frames: list[tuple[int, int, int, bytes]], stream_id: int, message: bytes, max_data: int
) -> None:
    """HEADERS (:status 200, application/grpc), the message in DATA frames of at most `max_data`
    bytes, OK trailers with END_STREAM: the frames of `stream_id` among `frames`."""
    from cadence_fast._core import load_pure

    decoder = load_pure("hpack").Decoder()
    mine = [f for f in frames if f[2] == stream_id]
    assert len(mine) >= 3, mine
    kind, flags, _, block = mine[0]
    assert kind == HEADERS and flags == END_HEADERS
    assert decoder.decode(block) == [(":status", "200"), ("content-type", "application/grpc")]
    body = b""
    for kind, flags, _, payload in mine[1:-1]:
        assert kind == DATA and flags == 0, (kind, flags)
        assert len(payload) <= max_data
        body += payload
    assert body == b"\x00" + struct.pack(">I", len(message)) + message
    kind, flags, _, block = mine[-1]
    assert kind == HEADERS and flags == END_HEADERS | END_STREAM
    assert decoder.decode(block) == [("grpc-status", "0")]


# --- the connection under test -----------------------------------------------------------------


def h2_module(impl: str) -> ModuleType:
    """`_core.h2` in the requested build; the pure one decodes with the pure hpack."""
    h2 = core_module("h2", impl)
    if impl == "pure":
        h2.hpack = core_module("hpack", "pure")
    return h2


class FakeTransport:
    """What H2Connection uses of an asyncio transport; counts the writes, keeps them if `keep`.

    Measured rounds do not keep them: a socket transport hands the bytes to the kernel and
    drops them, and keeping megabytes alive per round makes the allocator fault in fresh
    pages every round (it doubled the compiled 10 KB figure in a first version, depending
    only on which case ran first). The checks run on a round that keeps them.

    `waiter` (a future) is resolved by the next write: the benchmark's way to run the loop
    exactly until the reply is out."""

    def __init__(self) -> None:
        self.keep = True
        self.writes: list[bytes] = []
        self.count = 0  # writes
        self.size = 0  # bytes written
        self.last = b""
        self.waiter: asyncio.Future[None] | None = None
        self.closed = False

    def write(self, data: bytes) -> None:
        self.count += 1
        self.size += len(data)
        self.last = data
        if self.keep:
            self.writes.append(data)
        waiter = self.waiter
        if waiter is not None:
            self.waiter = None
            waiter.set_result(None)

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 50000) if name == "peername" else default

    def close(self) -> None:
        self.closed = True

    def take(self) -> bytes:
        data = b"".join(self.writes)
        self.writes.clear()
        return data


class FakeServer:
    """What H2Connection reads of the RpcServer."""

    def __init__(self, h2: ModuleType, handler: Callable[[Any, Any], Any]) -> None:
        self.max_message = 4 * 1024 * 1024
        self.methods = {PATH: h2.RpcMethod(None, handler, None)}
        self.connections: set[Any] = set()

    def lookup(self, path: str, metadata: list[tuple[str, str]]) -> None:
        return None


async def echo(request: bytes, context: Any) -> bytes:
    return request


def connect(h2: ModuleType, server: FakeServer, initial_window: int) -> tuple[Any, FakeTransport]:
    """A connection past its preface and SETTINGS exchange (call on the running loop)."""
    transport = FakeTransport()
    conn = h2.H2Connection(server)
    conn.connection_made(transport)
    conn.data_received(client_start(initial_window))
    frames = parse_frames(transport.take())
    assert [(k, f) for k, f, _, _ in frames] == [(SETTINGS, 0), (WINDOW_UPDATE, 0), (SETTINGS, ACK)]
    return conn, transport


# --- (1) one unary call ----------------------------------------------------------------------


def test_unary_call(benchmark: Any, impl: str, loop: asyncio.AbstractEventLoop) -> None:
    h2 = h2_module(impl)
    benchmark.group = f"transport: {CALLS:,} unary calls (100-byte message, indexed headers)"
    benchmark.extra_info["calls_per_round"] = CALLS
    server = FakeServer(h2, echo)

    async def first() -> tuple[Any, FakeTransport]:
        conn, transport = connect(h2, server, 4 * 1024 * 1024)
        # The first request fills the HPACK dynamic table; the benchmark's calls index it.
        transport.waiter = loop.create_future()
        conn.data_received(request(1, FIRST_BLOCK))
        await transport.waiter
        check_reply(parse_frames(transport.take()), 1, MESSAGE, 16384)
        transport.waiter = loop.create_future()
        conn.data_received(request(3, LATER_BLOCK))
        await transport.waiter
        check_reply(parse_frames(transport.take()), 3, MESSAGE, 16384)
        return conn, transport

    conn, transport = loop.run_until_complete(first())
    transport.keep = False
    next_id = 5

    def setup() -> tuple[tuple[Any, ...], dict[str, Any]]:
        nonlocal next_id
        calls = [request(next_id + 2 * i, LATER_BLOCK) for i in range(CALLS)]
        next_id += 2 * CALLS
        return (calls,), {}

    async def serve(calls: list[bytes]) -> None:
        for data in calls:
            transport.waiter = loop.create_future()
            conn.data_received(data)
            await transport.waiter

    def run_calls(calls: list[bytes]) -> int:
        transport.count = 0
        loop.run_until_complete(serve(calls))
        return transport.count

    written = benchmark.pedantic(run_calls, setup=setup, rounds=30, iterations=1, warmup_rounds=1)
    assert written == CALLS
    assert conn.active_calls() == 0
    # The last call's reply, frame by frame.
    check_reply(parse_frames(transport.last), next_id - 2, MESSAGE, 16384)
    conn.connection_lost(None)


# --- (2) HPACK decoding ------------------------------------------------------------------------


def test_hpack_decode_first_request(benchmark: Any, impl: str) -> None:
    hpack = core_module("hpack", impl)
    benchmark.group = f"transport: HPACK decode of {CALLS:,} request blocks"
    benchmark.extra_info["blocks_per_round"] = CALLS
    assert hpack.Decoder().decode(FIRST_BLOCK) == REQUEST_HEADERS

    def setup() -> tuple[tuple[Any, ...], dict[str, Any]]:
        return ([hpack.Decoder(4096) for _ in range(CALLS)],), {}

    def decode(decoders: list[Any]) -> list:
        headers: list = []
        for d in decoders:
            headers = d.decode(FIRST_BLOCK)
        return headers

    headers = benchmark.pedantic(decode, setup=setup, rounds=30, iterations=1, warmup_rounds=1)
    assert headers == REQUEST_HEADERS


def test_hpack_decode_later_request(benchmark: Any, impl: str) -> None:
    hpack = core_module("hpack", impl)
    benchmark.group = f"transport: HPACK decode of {CALLS:,} request blocks"
    benchmark.extra_info["blocks_per_round"] = CALLS
    decoder = hpack.Decoder(4096)
    assert decoder.decode(FIRST_BLOCK) == REQUEST_HEADERS
    table = decoder.table()
    assert decoder.decode(LATER_BLOCK) == LATER_HEADERS
    assert decoder.table() == table  # the block leaves the table as it was: every round decodes the same

    def decode() -> list:
        headers: list = []
        for _ in range(CALLS):
            headers = decoder.decode(LATER_BLOCK)
        return headers

    headers = benchmark.pedantic(decode, rounds=30, iterations=1, warmup_rounds=1)
    assert headers == LATER_HEADERS


# --- (3) reply assembly ----------------------------------------------------------------------

SMALL_WINDOW = 8192
LARGE_WINDOW = 64 * 1024 * 1024


@pytest.mark.parametrize(("size", "streams"), [(10 * 1024, 100), (1024 * 1024, 1)], ids=["10KBx100", "1MB"])
@pytest.mark.parametrize("window", ["large", "small"])
def test_send_reply(
    benchmark: Any, impl: str, loop: asyncio.AbstractEventLoop, size: int, streams: int, window: str
) -> None:
    h2 = h2_module(impl)
    benchmark.group = "transport: reply assembly (send_reply)"
    benchmark.extra_info["replies_per_round"] = streams
    reply = bytes(i & 0xFF for i in range(size))
    initial_window = SMALL_WINDOW if window == "small" else LARGE_WINDOW
    # Each client round trip of the small-window case: one WINDOW_UPDATE of 8 KB per stream.
    updates = -(-(size + 5) // SMALL_WINDOW) - 1 if window == "small" else 0
    captured: list[Any] = []
    parked: asyncio.Future[None] = loop.create_future()
    done_capturing: list[asyncio.Future[None]] = []

    async def park(request: bytes, context: Any) -> bytes:
        # The benchmark answers the call itself (send_reply): hand it the stream, never return.
        captured.append(context._stream)
        if len(captured) == streams:
            done_capturing[0].set_result(None)
        await parked
        return b""

    server = FakeServer(h2, park)
    ids = [1 + 2 * i for i in range(streams)]
    updates_of = [window_update(sid, SMALL_WINDOW) for sid in ids]
    current: list[Any] = []  # the connection of the round being measured
    keep = [True]  # the first round, unmeasured, keeps what it writes for the checks

    def setup() -> tuple[tuple[Any, ...], dict[str, Any]]:
        async def open_streams() -> tuple[Any, FakeTransport]:
            captured.clear()
            done_capturing[:] = [loop.create_future()]
            conn, transport = connect(h2, server, initial_window)
            conn.data_received(
                b"".join(request(sid, FIRST_BLOCK if sid == 1 else LATER_BLOCK) for sid in ids)
            )
            await done_capturing[0]
            return conn, transport

        if current:
            current.pop().connection_lost(None)  # the previous round's: cancels its parked handlers
        conn, transport = loop.run_until_complete(open_streams())
        current.append(conn)
        transport.keep = keep[0]
        transport.writes.clear()
        transport.count = transport.size = 0
        return (conn, transport, list(captured)), {}

    def assemble(conn: Any, transport: FakeTransport, stream_list: list[Any]) -> FakeTransport:
        for stream, update in zip(stream_list, updates_of, strict=True):
            conn.send_reply(stream, reply)
            # What the loop's call_soon runs next: the write. Called here so that every reply
            # is written on its own, as at low load (one reply per loop iteration).
            conn._flush_out()
            for _ in range(updates):
                conn.data_received(update)  # the client's WINDOW_UPDATE: the next DATA frame out
        return transport

    # Once, unmeasured: every reply frame by frame.
    (args, _) = setup()
    transport = assemble(*args)
    assert transport.count == streams * (1 + updates)
    frames = parse_frames(transport.take())
    for sid in ids:
        check_reply(frames, sid, reply, SMALL_WINDOW if window == "small" else 16384)
    assert len(frames) == streams * (2 + -(-(size + 5) // (SMALL_WINDOW if window == "small" else 16384)))
    expected_size = transport.size
    keep[0] = False

    transport = benchmark.pedantic(
        assemble, setup=setup, rounds=30 if size > 100_000 else 100, iterations=1, warmup_rounds=2
    )
    assert (transport.count, transport.size) == (streams * (1 + updates), expected_size)
    parked.cancel()
    current.pop().connection_lost(None)
    loop.run_until_complete(asyncio.sleep(0))
