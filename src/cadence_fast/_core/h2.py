"""The gRPC transport of the frontend: HTTP/2 (RFC 9113) unary calls on the event loop.

Why not grpcio's server: grpc.aio spends ~150 µs of event-loop CPU (plus ~80 µs in its
poller and event-engine threads) on every unary call, before the handler runs: every
completion crosses from a C-core thread to the loop through a socket, and the call
machinery is generic (streaming, interceptors). A Cadence workflow of one activity is
seven such calls, so that floor was a third of the server's CPU. This module does only
what Cadence's API needs, in one pass on the loop thread: unary-unary calls over
HTTP/2 with HPACK, deadlines (grpc-timeout), cancellation (RST_STREAM, a lost
connection), statuses with trailing metadata (grpc-status-details-bin), flow control
both ways, and graceful GOAWAY. Compiled by Cython (pure-Python mode); runs unchanged
uncompiled with CADENCE_FAST_PURE=1.

A connection is an `H2Connection` (an asyncio protocol). Each request stream becomes
one asyncio Task that runs the method's handler with a `CallContext` (the subset of
grpc.aio.ServicerContext the servicers use) and writes the reply: HEADERS, DATA,
trailers, in one write when the flow-control windows allow (they almost always do).

This module must not import anything of cadence_fast outside `_core`.
"""

from __future__ import annotations

import asyncio
import base64
import struct
from collections.abc import Callable
from typing import Any

import cython  # a runtime dependency: its shadow module runs the pure mode uncompiled

from cadence_fast._core import hpack

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

# Frame types (RFC 9113 §6).
DATA = 0x0
HEADERS = 0x1
PRIORITY = 0x2
RST_STREAM = 0x3
SETTINGS = 0x4
PUSH_PROMISE = 0x5
PING = 0x6
GOAWAY = 0x7
WINDOW_UPDATE = 0x8
CONTINUATION = 0x9

# Flags.
FLAG_END_STREAM = 0x1
FLAG_ACK = 0x1
FLAG_END_HEADERS = 0x4
FLAG_PADDED = 0x8
FLAG_PRIORITY = 0x20

# Error codes (RFC 9113 §7).
NO_ERROR = 0x0
PROTOCOL_ERROR = 0x1
INTERNAL_ERROR = 0x2
FLOW_CONTROL_ERROR = 0x3
STREAM_CLOSED = 0x5
FRAME_SIZE_ERROR = 0x6
REFUSED_STREAM = 0x7
CANCEL = 0x8
COMPRESSION_ERROR = 0x9

# Settings identifiers.
SETTINGS_HEADER_TABLE_SIZE = 0x1
SETTINGS_INITIAL_WINDOW_SIZE = 0x4
SETTINGS_MAX_FRAME_SIZE = 0x5
SETTINGS_MAX_HEADER_LIST_SIZE = 0x6

DEFAULT_WINDOW = 65535
MAX_WINDOW = 2**31 - 1
DEFAULT_MAX_FRAME = 16384
#: What we let a peer send before it must wait for a WINDOW_UPDATE: large, so a request
#: of normal size never waits a round trip; replenished as the bytes are consumed.
RECV_STREAM_WINDOW = 1 << 22
RECV_CONN_WINDOW = 1 << 24
#: The largest frame payload we accept (we advertise it in SETTINGS_MAX_FRAME_SIZE).
RECV_MAX_FRAME = 1 << 20
#: Bound on one (possibly CONTINUATION-split) header block.
MAX_HEADER_BLOCK = 1 << 20

# gRPC status codes used by the transport itself.
OK = 0
CANCELLED = 1
UNKNOWN = 2
DEADLINE_EXCEEDED = 4
RESOURCE_EXHAUSTED = 8
UNIMPLEMENTED = 12
INTERNAL = 13
UNAVAILABLE = 14

_HEADER = struct.Struct(">I")


def frame(kind: int, flags: int, stream_id: int, payload: bytes) -> bytes:
    """One HTTP/2 frame: 24-bit length, type, flags, 31-bit stream id, payload."""
    n = len(payload)
    return bytes(((n >> 16) & 0xFF, (n >> 8) & 0xFF, n & 0xFF, kind, flags)) + _HEADER.pack(stream_id) + payload


# ":status: 200" is static index 8; content-type (static name 31) as a literal.
_RESPONSE_HEADER_BLOCK = b"\x88" + hpack.encode_indexed_name_literal(31, b"application/grpc")
_OK_TRAILER_BLOCK = hpack.encode_literal(b"grpc-status", b"0")
_SERVER_SETTINGS = frame(
    SETTINGS,
    0,
    0,
    struct.pack(">HI", SETTINGS_INITIAL_WINDOW_SIZE, RECV_STREAM_WINDOW)
    + struct.pack(">HI", SETTINGS_MAX_FRAME_SIZE, RECV_MAX_FRAME)
    + struct.pack(">HI", SETTINGS_MAX_HEADER_LIST_SIZE, MAX_HEADER_BLOCK),
) + frame(WINDOW_UPDATE, 0, 0, _HEADER.pack(RECV_CONN_WINDOW - DEFAULT_WINDOW))
_SETTINGS_ACK = frame(SETTINGS, FLAG_ACK, 0, b"")

_TIMEOUT_UNITS = {"H": 3600.0, "M": 60.0, "S": 1.0, "m": 1e-3, "u": 1e-6, "n": 1e-9}


def parse_timeout(text: str) -> float | None:
    """grpc-timeout ("<1-8 digits><unit>") in seconds; None when malformed."""
    n = len(text)
    if n < 2 or n > 9:
        return None
    # No negative indexes in this module: it is compiled with wraparound=False.
    digits = text[: n - 1]
    unit = _TIMEOUT_UNITS.get(text[n - 1])
    # isascii(): str.isdigit() also accepts digits such as "²" (a latin-1 header byte) that
    # int() rejects; the ValueError escaped data_received and dropped the connection.
    if unit is None or not digits.isascii() or not digits.isdigit():
        return None
    return int(digits) * unit


def _percent_encode(message: str) -> bytes:
    """grpc-message: UTF-8, with bytes outside printable ASCII and '%' percent-encoded."""
    raw = message.encode("utf-8", "replace")
    if all(0x20 <= b <= 0x7E and b != 0x25 for b in raw):
        return raw
    return b"".join(bytes((b,)) if 0x20 <= b <= 0x7E and b != 0x25 else b"%%%02X" % b for b in raw)


def status_block(code: int, message: str, trailing: Any) -> bytes:
    """The HPACK block of the trailers (grpc-status, grpc-message, trailing metadata)."""
    block = hpack.encode_literal(b"grpc-status", str(code).encode())
    if message:
        block += hpack.encode_literal(b"grpc-message", _percent_encode(message))
    for key, value in trailing or ():
        name = key.lower().encode("ascii")
        if name.endswith(b"-bin"):
            raw = value if isinstance(value, bytes | bytearray) else str(value).encode()
            data = base64.b64encode(raw).rstrip(b"=")
        else:
            data = value.encode("ascii") if isinstance(value, str) else bytes(value)
        block += hpack.encode_literal(name, data)
    return block


class RpcMethod:
    """One unary-unary method: how to decode the request, run it, encode the reply."""

    __slots__ = ("deserialize", "handler", "serialize")

    def __init__(
        self,
        deserialize: Callable[[bytes], Any] | None,
        handler: Callable[[Any, Any], Any],
        serialize: Callable[[Any], bytes] | None,
    ) -> None:
        self.deserialize = deserialize
        self.handler = handler
        self.serialize = serialize


class AbortError(Exception):
    """Raised by CallContext.abort*: ends the call with this status."""

    def __init__(self, code: int, details: str, trailing: Any = ()) -> None:
        super().__init__(details)
        self.code = code
        self.details = details
        self.trailing = trailing


def _code_value(code: Any) -> int:
    """A grpc.StatusCode (value is (int, name)) or a plain int."""
    value = getattr(code, "value", code)
    if isinstance(value, tuple):
        value = value[0]
    return int(value)


class CallContext:
    """The part of grpc.aio.ServicerContext that Cadence's servicers use."""

    __slots__ = ("_stream", "_loop", "_deadline", "_metadata", "_peer", "code", "details", "trailing")

    def __init__(self, stream: Stream, loop: Any, deadline: float, metadata: list, peer: str) -> None:
        self._stream = stream
        self._loop = loop
        self._deadline = deadline
        self._metadata = metadata
        self._peer = peer
        self.code = OK
        self.details = ""
        self.trailing: Any = ()

    def time_remaining(self) -> float | None:
        if self._deadline <= 0.0:
            return None
        return max(0.0, self._deadline - self._loop.time())

    def invocation_metadata(self) -> tuple:
        return tuple(self._metadata)

    def peer(self) -> str:
        return self._peer

    def cancelled(self) -> bool:
        stream: Stream = self._stream
        return stream.cancelled

    def done(self) -> bool:
        stream: Stream = self._stream
        return stream.finished

    def set_code(self, code: Any) -> None:
        self.code = _code_value(code)

    def set_details(self, details: str) -> None:
        self.details = details

    def set_trailing_metadata(self, trailing: Any) -> None:
        self.trailing = tuple(trailing)

    async def abort(self, code: Any, details: str = "", trailing_metadata: Any = ()) -> None:
        raise AbortError(_code_value(code), details, trailing_metadata)

    async def abort_with_status(self, status: Any) -> None:
        raise AbortError(_code_value(status.code), status.details or "", status.trailing_metadata)


@cython.cclass
class Stream:
    """One request stream: what arrived, and what of the reply still waits for window."""

    id: cython.int
    path: str
    timeout: str
    encoding: str
    metadata: list
    body: bytearray
    recv_closed: cython.bint
    recv_unacked: cython.Py_ssize_t
    send_window: cython.Py_ssize_t
    pending: object  # memoryview of DATA payload bytes not yet sent, or None
    pending_trailers: object  # the trailers frame to send after `pending`, or None
    task: object
    cancelled: cython.bint
    finished: cython.bint
    rejected: cython.bint

    def __init__(self, stream_id: int, send_window: int) -> None:
        self.id = stream_id
        self.path = ""
        self.timeout = ""
        self.encoding = ""
        self.metadata = []
        self.body = bytearray()
        self.recv_closed = False
        self.recv_unacked = 0
        self.send_window = send_window
        self.pending = None
        self.pending_trailers = None
        self.task = None
        self.cancelled = False
        self.finished = False
        self.rejected = False


class ConnectionError_(Exception):
    """A connection error: GOAWAY with this code, then close."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


@cython.cclass
class H2Connection:
    """One client connection (an asyncio protocol): frames in, calls dispatched, replies out."""

    server: object  # the RpcServer: .methods (dict path -> RpcMethod), .max_message, .connections
    transport: object
    loop: object
    buf: bytearray
    preface_done: cython.bint
    decoder: object
    streams: dict
    last_stream_id: cython.int
    conn_send_window: cython.Py_ssize_t
    peer_initial_window: cython.Py_ssize_t
    peer_max_frame: cython.Py_ssize_t
    conn_recv_unacked: cython.Py_ssize_t
    cont_stream: cython.int
    cont_flags: cython.int
    cont_block: bytearray
    blocked: list
    out: list
    closed: cython.bint
    goaway_sent: cython.bint
    in_receive: cython.bint  # inside data_received: its end writes `out`
    flush_scheduled: cython.bint  # a call_soon of _flush_out is pending
    peer: str

    def __init__(self, server: Any) -> None:
        self.server = server
        self.transport = None
        self.loop = None
        self.buf = bytearray()
        self.preface_done = False
        self.decoder = hpack.Decoder(4096)
        self.streams = {}
        self.last_stream_id = 0
        self.conn_send_window = DEFAULT_WINDOW
        self.peer_initial_window = DEFAULT_WINDOW
        self.peer_max_frame = DEFAULT_MAX_FRAME
        self.conn_recv_unacked = 0
        self.cont_stream = 0
        self.cont_flags = 0
        self.cont_block = bytearray()
        self.blocked = []
        self.out = []
        self.closed = False
        self.goaway_sent = False
        self.in_receive = False
        self.flush_scheduled = False
        self.peer = ""

    # --- asyncio protocol --------------------------------------------------------------

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        self.loop = asyncio.get_running_loop()
        peername = transport.get_extra_info("peername")
        if peername:
            self.peer = f"ipv4:{peername[0]}:{peername[1]}" if len(peername) == 2 else f"ipv6:[{peername[0]}]:{peername[1]}"
        self.server.connections.add(self)
        # The server's connection preface: our SETTINGS first (RFC 9113 §3.4).
        transport.write(_SERVER_SETTINGS)

    def connection_lost(self, exc: Any) -> None:
        self.closed = True
        self.server.connections.discard(self)
        for s in list(self.streams.values()):
            self._cancel_stream(s)
        self.streams.clear()
        self.blocked.clear()

    def eof_received(self) -> bool:
        return False  # close our side too

    def pause_writing(self) -> None:  # replies are bounded by flow control; nothing to pause
        pass

    def resume_writing(self) -> None:
        pass

    def data_received(self, data: bytes) -> None:
        if self.closed:
            return
        buf = self.buf
        buf += data
        self.in_receive = True
        try:
            self._process()
        except ConnectionError_ as e:
            self._fail(e.code, str(e))
        except hpack.HpackError as e:
            self._fail(COMPRESSION_ERROR, f"header block: {e}")
        finally:
            self.in_receive = False
        self._flush_out()

    def _send(self, data: bytes) -> None:
        """Queue `data`; everything queued in one loop iteration goes out in one write, in order.

        Under load many replies of one connection complete in the same iteration: one
        write (one syscall) for all of them instead of one each."""
        self.out.append(data)
        if not self.in_receive and not self.flush_scheduled:
            self.flush_scheduled = True
            self.loop.call_soon(self._flush_out)

    def _flush_out(self) -> None:
        self.flush_scheduled = False
        if self.out:
            out = self.out
            self.out = []
            if not self.closed:
                self.transport.write(b"".join(out))

    # --- frames in -----------------------------------------------------------------------

    def _process(self) -> None:
        buf = self.buf
        pos: cython.Py_ssize_t = 0
        end: cython.Py_ssize_t = len(buf)
        if not self.preface_done:
            if end < 24:
                if bytes(buf[:end]) != PREFACE[:end]:
                    raise ConnectionError_(PROTOCOL_ERROR, "not an HTTP/2 connection preface")
                return
            if bytes(buf[:24]) != PREFACE:
                raise ConnectionError_(PROTOCOL_ERROR, "not an HTTP/2 connection preface")
            self.preface_done = True
            pos = 24
        length: cython.Py_ssize_t
        kind: cython.int
        flags: cython.int
        stream_id: cython.int
        while end - pos >= 9:
            length = (buf[pos] << 16) | (buf[pos + 1] << 8) | buf[pos + 2]
            if length > RECV_MAX_FRAME:
                raise ConnectionError_(FRAME_SIZE_ERROR, f"frame of {length} bytes exceeds {RECV_MAX_FRAME}")
            if end - pos < 9 + length:
                break
            kind = buf[pos + 3]
            flags = buf[pos + 4]
            stream_id = ((buf[pos + 5] & 0x7F) << 24) | (buf[pos + 6] << 16) | (buf[pos + 7] << 8) | buf[pos + 8]
            payload = bytes(buf[pos + 9 : pos + 9 + length])
            pos += 9 + length
            if self.cont_stream and kind != CONTINUATION:
                raise ConnectionError_(PROTOCOL_ERROR, "a header block was interrupted by another frame")
            if kind == DATA:
                self._on_data(flags, stream_id, payload)
            elif kind == HEADERS:
                self._on_headers(flags, stream_id, payload)
            elif kind == CONTINUATION:
                self._on_continuation(flags, stream_id, payload)
            elif kind == SETTINGS:
                self._on_settings(flags, stream_id, payload)
            elif kind == PING:
                self._on_ping(flags, stream_id, payload)
            elif kind == WINDOW_UPDATE:
                self._on_window_update(stream_id, payload)
            elif kind == RST_STREAM:
                self._on_rst_stream(stream_id, payload)
            elif kind == GOAWAY:
                pass  # the client stops opening streams; the ones open finish normally
            elif kind == PRIORITY:
                if stream_id == 0 or length != 5:
                    raise ConnectionError_(PROTOCOL_ERROR, "malformed PRIORITY frame")
            elif kind == PUSH_PROMISE:
                raise ConnectionError_(PROTOCOL_ERROR, "a client must not send PUSH_PROMISE")
            # Unknown frame types are ignored (RFC 9113 §4.1).
            if self.closed:
                return
        if pos:
            del buf[:pos]

    def _on_data(self, flags: cython.int, stream_id: cython.int, payload: bytes) -> None:
        if stream_id == 0:
            raise ConnectionError_(PROTOCOL_ERROR, "DATA on stream 0")
        n: cython.Py_ssize_t = len(payload)
        self.conn_recv_unacked += n
        if self.conn_recv_unacked >= RECV_CONN_WINDOW // 2:
            self.out.append(frame(WINDOW_UPDATE, 0, 0, _HEADER.pack(self.conn_recv_unacked)))
            self.conn_recv_unacked = 0
        stream: Stream = self.streams.get(stream_id)
        if stream is None or stream.recv_closed:
            if stream_id > self.last_stream_id:
                raise ConnectionError_(PROTOCOL_ERROR, f"DATA on idle stream {stream_id}")
            return  # a stream we already answered or reset: drop what is still in flight
        if flags & FLAG_PADDED:
            payload = self._strip_padding(payload)
        if not stream.rejected:
            stream.body += payload
            if len(stream.body) > self.server.max_message + 5:
                self._reject(
                    stream,
                    RESOURCE_EXHAUSTED,
                    f"Received message larger than max ({len(stream.body) - 5} vs. {self.server.max_message})",
                )
        if flags & FLAG_END_STREAM:
            stream.recv_closed = True
            if not stream.rejected:
                self._dispatch(stream)
            elif stream.finished:
                self.streams.pop(stream_id, None)
        elif not stream.rejected:
            stream.recv_unacked += n
            if stream.recv_unacked >= RECV_STREAM_WINDOW // 2:
                self.out.append(frame(WINDOW_UPDATE, 0, stream_id, _HEADER.pack(stream.recv_unacked)))
                stream.recv_unacked = 0

    def _strip_padding(self, payload: bytes) -> bytes:
        if not payload:
            raise ConnectionError_(PROTOCOL_ERROR, "padded frame without pad length")
        pad: cython.Py_ssize_t = payload[0]
        if pad >= len(payload):
            raise ConnectionError_(PROTOCOL_ERROR, "padding exceeds the frame")
        return payload[1 : len(payload) - pad]

    def _on_headers(self, flags: cython.int, stream_id: cython.int, payload: bytes) -> None:
        if stream_id == 0:
            raise ConnectionError_(PROTOCOL_ERROR, "HEADERS on stream 0")
        if flags & FLAG_PADDED:
            payload = self._strip_padding(payload)
        if flags & FLAG_PRIORITY:
            if len(payload) < 5:
                raise ConnectionError_(PROTOCOL_ERROR, "HEADERS priority fields truncated")
            payload = payload[5:]
        if flags & FLAG_END_HEADERS:
            self._on_header_block(flags, stream_id, payload)
        else:
            self.cont_stream = stream_id
            self.cont_flags = flags
            self.cont_block = bytearray(payload)

    def _on_continuation(self, flags: cython.int, stream_id: cython.int, payload: bytes) -> None:
        if not self.cont_stream or stream_id != self.cont_stream:
            raise ConnectionError_(PROTOCOL_ERROR, "CONTINUATION without a header block in progress")
        self.cont_block += payload
        if len(self.cont_block) > MAX_HEADER_BLOCK:
            raise ConnectionError_(PROTOCOL_ERROR, "header block too large")
        if flags & FLAG_END_HEADERS:
            block = bytes(self.cont_block)
            self.cont_stream = 0
            self.cont_block = bytearray()
            self._on_header_block(self.cont_flags, stream_id, block)

    def _on_header_block(self, flags: cython.int, stream_id: cython.int, block: bytes) -> None:
        # Every block is decoded, even for a stream we refuse: the HPACK table is shared.
        headers: list = self.decoder.decode(block)
        stream: Stream = self.streams.get(stream_id)
        if stream is not None:
            # Trailers from the client: they end its side of the stream.
            if not flags & FLAG_END_STREAM:
                raise ConnectionError_(PROTOCOL_ERROR, f"second HEADERS without END_STREAM on stream {stream_id}")
            if not stream.recv_closed:
                stream.recv_closed = True
                if not stream.rejected:
                    self._dispatch(stream)
            return
        if stream_id <= self.last_stream_id or not stream_id & 1:
            if stream_id & 1:
                return  # a late frame of a stream we already closed
            raise ConnectionError_(PROTOCOL_ERROR, f"a client may not open stream {stream_id}")
        self.last_stream_id = stream_id
        if self.goaway_sent:
            self.out.append(frame(RST_STREAM, 0, stream_id, _HEADER.pack(REFUSED_STREAM)))
            return
        stream = Stream(stream_id, self.peer_initial_window)
        metadata: list = stream.metadata
        for name, value in headers:
            # `name and`: HPACK can carry an empty name; name[0] of it raised IndexError out of
            # data_received (asyncio then dropped the connection without a GOAWAY).
            if name and name[0] == ":":
                if name == ":path":
                    stream.path = value
            elif name == "grpc-timeout":
                stream.timeout = value
            elif name == "grpc-encoding":
                stream.encoding = value
            elif name != "te" and name != "content-type" and name != "grpc-accept-encoding":
                metadata.append((name, value))
        self.streams[stream_id] = stream
        if flags & FLAG_END_STREAM:
            stream.recv_closed = True
            self._dispatch(stream)

    def _on_settings(self, flags: cython.int, stream_id: cython.int, payload: bytes) -> None:
        if stream_id != 0:
            raise ConnectionError_(PROTOCOL_ERROR, "SETTINGS on a stream")
        stream: Stream
        if flags & FLAG_ACK:
            # RFC 9113 §6.5: an ACK with a payload is a FRAME_SIZE_ERROR (was silently accepted).
            if payload:
                raise ConnectionError_(FRAME_SIZE_ERROR, "SETTINGS ACK with a payload")
            return
        if len(payload) % 6:
            raise ConnectionError_(FRAME_SIZE_ERROR, "SETTINGS length not a multiple of 6")
        i: cython.Py_ssize_t
        for i in range(0, len(payload), 6):
            ident, value = struct.unpack_from(">HI", payload, i)
            if ident == SETTINGS_INITIAL_WINDOW_SIZE:
                if value > MAX_WINDOW:
                    raise ConnectionError_(FLOW_CONTROL_ERROR, "SETTINGS_INITIAL_WINDOW_SIZE above 2^31-1")
                delta = value - self.peer_initial_window
                self.peer_initial_window = value
                for s in self.streams.values():
                    stream = s
                    stream.send_window += delta
                    # RFC 9113 §6.9.2: a change that takes a stream window above 2^31-1 is a
                    # connection FLOW_CONTROL_ERROR (was unchecked).
                    if stream.send_window > MAX_WINDOW:
                        raise ConnectionError_(FLOW_CONTROL_ERROR, "a stream window above 2^31-1")
            elif ident == SETTINGS_MAX_FRAME_SIZE:
                if value < DEFAULT_MAX_FRAME or value > 16777215:
                    raise ConnectionError_(PROTOCOL_ERROR, f"SETTINGS_MAX_FRAME_SIZE {value} out of range")
                self.peer_max_frame = value
            # HEADER_TABLE_SIZE: our replies never use the dynamic table; the rest is advisory.
        self.out.append(_SETTINGS_ACK)
        if self.blocked:
            self._flush_blocked()

    def _on_ping(self, flags: cython.int, stream_id: cython.int, payload: bytes) -> None:
        if stream_id != 0:
            raise ConnectionError_(PROTOCOL_ERROR, "PING on a stream")
        if len(payload) != 8:
            raise ConnectionError_(FRAME_SIZE_ERROR, "PING payload must be 8 bytes")
        if not flags & FLAG_ACK:
            self.out.append(frame(PING, FLAG_ACK, 0, payload))

    def _on_window_update(self, stream_id: cython.int, payload: bytes) -> None:
        if len(payload) != 4:
            raise ConnectionError_(FRAME_SIZE_ERROR, "WINDOW_UPDATE payload must be 4 bytes")
        increment: cython.Py_ssize_t = _HEADER.unpack(payload)[0] & 0x7FFFFFFF
        if stream_id == 0:
            if increment == 0:
                raise ConnectionError_(PROTOCOL_ERROR, "WINDOW_UPDATE of 0")
            self.conn_send_window += increment
            if self.conn_send_window > MAX_WINDOW:
                raise ConnectionError_(FLOW_CONTROL_ERROR, "connection window above 2^31-1")
        else:
            stream: Stream = self.streams.get(stream_id)
            if stream is None:
                return
            if increment == 0:
                self.out.append(frame(RST_STREAM, 0, stream_id, _HEADER.pack(PROTOCOL_ERROR)))
                self._close_stream(stream, cancel=True)
                return
            stream.send_window += increment
            if stream.send_window > MAX_WINDOW:
                # RFC 9113 §6.9.1: a stream error FLOW_CONTROL_ERROR (was unchecked: the window
                # grew past what a peer can mean).
                self.out.append(frame(RST_STREAM, 0, stream_id, _HEADER.pack(FLOW_CONTROL_ERROR)))
                self._close_stream(stream, cancel=True)
                return
        if self.blocked:
            self._flush_blocked()

    def _on_rst_stream(self, stream_id: cython.int, payload: bytes) -> None:
        if len(payload) != 4:  # RFC 9113 §6.4: FRAME_SIZE_ERROR (was PROTOCOL_ERROR)
            raise ConnectionError_(FRAME_SIZE_ERROR, "RST_STREAM payload must be 4 bytes")
        if stream_id == 0:
            raise ConnectionError_(PROTOCOL_ERROR, "RST_STREAM on stream 0")
        stream: Stream = self.streams.get(stream_id)
        if stream is not None:
            self._close_stream(stream, cancel=True)

    # --- calls -------------------------------------------------------------------------

    def _dispatch(self, stream: Stream) -> None:
        server = self.server
        method = server.methods.get(stream.path)
        if method is None:
            method = server.lookup(stream.path, stream.metadata)
            if method is None:
                self._reject(stream, UNIMPLEMENTED, f"Method not found: {stream.path}")
                return
        if stream.encoding and stream.encoding != "identity":
            self._reject(stream, UNIMPLEMENTED, f"grpc-encoding {stream.encoding!r} is not supported")
            return
        body = stream.body
        stream.body = bytearray()
        if len(body) < 5:
            self._reject(stream, INTERNAL, "the request carries no message")
            return
        if body[0] != 0:
            self._reject(stream, UNIMPLEMENTED, "compressed messages are not supported")
            return
        size: cython.Py_ssize_t = (body[1] << 24) | (body[2] << 16) | (body[3] << 8) | body[4]
        if size != len(body) - 5:
            self._reject(stream, INTERNAL, "the request is not exactly one message")
            return
        deadline = 0.0
        if stream.timeout:
            seconds = parse_timeout(stream.timeout)
            if seconds is None:
                self._reject(stream, INTERNAL, f"malformed grpc-timeout {stream.timeout!r}")
                return
            deadline = self.loop.time() + seconds
        context = CallContext(stream, self.loop, deadline, stream.metadata, self.peer)
        stream.task = self.loop.create_task(_run_call(self, stream, method, bytes(body[5:]), context))

    def _reject(self, stream: Stream, code: int, message: str) -> None:
        """Answer a stream with a status before (or instead of) running a handler."""
        stream.rejected = True
        stream.body = bytearray()
        self.send_status(stream, code, message, ())

    def send_reply(self, stream: Stream, data: bytes) -> None:
        """HEADERS, the message in DATA frames, OK trailers: one write when windows allow."""
        if self.closed or stream.finished:
            return
        n: cython.Py_ssize_t = len(data) + 5
        head = frame(HEADERS, FLAG_END_HEADERS, stream.id, _RESPONSE_HEADER_BLOCK)
        prefix = b"\x00" + _HEADER.pack(len(data))
        trailers = frame(HEADERS, FLAG_END_HEADERS | FLAG_END_STREAM, stream.id, _OK_TRAILER_BLOCK)
        if n <= self.peer_max_frame and n <= stream.send_window and n <= self.conn_send_window and not self.blocked:
            stream.send_window -= n
            self.conn_send_window -= n
            self._send(
                b"".join((head, bytes(((n >> 16) & 0xFF, (n >> 8) & 0xFF, n & 0xFF, DATA, 0)),
                          _HEADER.pack(stream.id), prefix, data, trailers))
            )
            self._finish_stream(stream)
            return
        self._send(head)
        stream.pending = memoryview(prefix + data)
        stream.pending_trailers = trailers
        self.blocked.append(stream)
        self._flush_blocked()
        self._send(b"")  # schedules the write of what _flush_blocked queued

    def _header_frames(self, stream_id: cython.int, flags: cython.int, block: bytes) -> bytes:
        """HEADERS (+ CONTINUATION frames when the block exceeds the peer's frame size)."""
        limit: cython.Py_ssize_t = self.peer_max_frame
        if len(block) <= limit:
            return frame(HEADERS, flags | FLAG_END_HEADERS, stream_id, block)
        parts = [frame(HEADERS, flags, stream_id, block[:limit])]
        pos: cython.Py_ssize_t = limit
        while pos < len(block):
            chunk = block[pos : pos + limit]
            pos += limit
            parts.append(frame(CONTINUATION, FLAG_END_HEADERS if pos >= len(block) else 0, stream_id, chunk))
        return b"".join(parts)

    def send_status(self, stream: Stream, code: int, message: str, trailing: Any) -> None:
        """A trailers-only reply: the call ends with `code` and no message."""
        if self.closed or stream.finished:
            return
        block = _RESPONSE_HEADER_BLOCK + status_block(code, message, trailing)
        self._send(self._header_frames(stream.id, FLAG_END_STREAM, block))
        self._finish_stream(stream)

    def _flush_blocked(self) -> None:
        """Send what the windows now allow of the replies waiting for them, in order."""
        still: list = []
        out: list = self.out
        for s in self.blocked:
            stream: Stream = s
            if stream.finished:
                continue
            pending = stream.pending
            while len(pending) and stream.send_window > 0 and self.conn_send_window > 0:
                n: cython.Py_ssize_t = min(len(pending), stream.send_window, self.conn_send_window, self.peer_max_frame)
                out.append(frame(DATA, 0, stream.id, bytes(pending[:n])))
                pending = pending[n:]
                stream.send_window -= n
                self.conn_send_window -= n
            stream.pending = pending
            if len(pending):
                still.append(stream)
            else:
                out.append(stream.pending_trailers)
                stream.pending = None
                stream.pending_trailers = None
                self._finish_stream(stream)
        self.blocked = still

    def _finish_stream(self, stream: Stream) -> None:
        """Our side ended. If the client's side is still open, tell it to stop sending."""
        stream.finished = True
        if stream.recv_closed:
            self.streams.pop(stream.id, None)
        else:
            self._send(frame(RST_STREAM, 0, stream.id, _HEADER.pack(NO_ERROR)))
            self.streams.pop(stream.id, None)

    def _close_stream(self, stream: Stream, cancel: bool) -> None:
        self.streams.pop(stream.id, None)
        stream.finished = True
        if cancel:
            self._cancel_stream(stream)

    def _cancel_stream(self, stream: Stream) -> None:
        stream.cancelled = True
        stream.finished = True
        task = stream.task
        if task is not None and not task.done():
            task.cancel()

    # --- connection errors and shutdown ------------------------------------------------------

    def _fail(self, code: int, message: str) -> None:
        if self.closed:
            return
        self.in_receive = False
        self._flush_out()
        self.transport.write(
            frame(GOAWAY, 0, 0, _HEADER.pack(self.last_stream_id) + _HEADER.pack(code) + message.encode()[:256])
        )
        self.transport.close()
        self.closed = True

    def goaway(self) -> None:
        """Graceful shutdown: accept no new stream; the open ones finish."""
        if self.closed or self.goaway_sent:
            return
        self.goaway_sent = True
        self._send(frame(GOAWAY, 0, 0, _HEADER.pack(self.last_stream_id) + _HEADER.pack(NO_ERROR)))

    def active_calls(self) -> int:
        return len(self.streams)

    def cancel_calls(self) -> None:
        """Shutdown past its grace: cancel the handlers still running (they answer UNAVAILABLE)."""
        stream: Stream
        for s in list(self.streams.values()):
            stream = s
            if stream.task is not None and not stream.task.done():
                stream.task.cancel()

    def close(self) -> None:
        if not self.closed:
            # Write what is queued first: the UNAVAILABLE of handlers cancelled by stop() sits in
            # `out` until a call_soon flush that would run after this close, and a closing
            # asyncio transport drops writes (the client saw a bare close, not the status).
            self._flush_out()
            self.transport.close()


async def _run_call(conn: H2Connection, stream: Stream, method: RpcMethod, payload: bytes, context: CallContext) -> None:
    try:
        request = method.deserialize(payload) if method.deserialize is not None else payload
    except Exception:  # noqa: BLE001 - the client sent bytes that are not the request message
        conn.send_status(stream, INTERNAL, "Exception deserializing request!", ())
        return
    try:
        response = await method.handler(request, context)
    except AbortError as e:
        conn.send_status(stream, e.code, e.details, e.trailing)
        return
    except asyncio.CancelledError:
        # The client reset the stream or went away: nobody to answer. (During shutdown
        # the server cancels leftovers after the grace period and answers UNAVAILABLE.)
        if not stream.finished:
            conn.send_status(stream, UNAVAILABLE, "the server is shutting down", ())
        raise
    except Exception as e:  # noqa: BLE001 - a handler bug: UNKNOWN, as grpc does
        conn.send_status(stream, UNKNOWN, f"Unexpected error in RPC handling: {type(e).__name__}: {e}", ())
        return
    if context.code != OK:
        conn.send_status(stream, context.code, context.details, context.trailing)
        return
    try:
        data = method.serialize(response) if method.serialize is not None else response
    except Exception:  # noqa: BLE001
        conn.send_status(stream, INTERNAL, "Failed to serialize response!", ())
        return
    conn.send_reply(stream, data)
