"""HPACK (RFC 7541) header compression for the HTTP/2 gRPC server (Cython, pure-Python mode).

The server needs the full decoder (gRPC clients — grpc-core, Go's x/net/http2 — index
their request headers into the dynamic table and Huffman-code string literals), but only
a stateless encoder: responses are sent as literals without indexing, so the server keeps
no encoder dynamic table and never has to track the client's SETTINGS_HEADER_TABLE_SIZE.

Decoding errors raise `HpackError`, which the connection turns into a COMPRESSION_ERROR.
Every read is bounds-checked by hand: the build compiles with boundscheck=False, so a
truncated block must be caught here, never by an IndexError.

This module must not import anything of cadence_fast outside `_core`: it is compiled
on its own by setup.py and must also run uncompiled (CADENCE_FAST_PURE=1).
"""

from __future__ import annotations

import cython  # a runtime dependency: its shadow module runs the pure mode uncompiled


class HpackError(Exception):
    """A header block that cannot be decoded: a COMPRESSION_ERROR of the connection."""


# RFC 7541 Appendix A. Index 1 is _STATIC_TABLE[0].
_STATIC_TABLE: tuple = (
    (":authority", ""),
    (":method", "GET"),
    (":method", "POST"),
    (":path", "/"),
    (":path", "/index.html"),
    (":scheme", "http"),
    (":scheme", "https"),
    (":status", "200"),
    (":status", "204"),
    (":status", "206"),
    (":status", "304"),
    (":status", "400"),
    (":status", "404"),
    (":status", "500"),
    ("accept-charset", ""),
    ("accept-encoding", "gzip, deflate"),
    ("accept-language", ""),
    ("accept-ranges", ""),
    ("accept", ""),
    ("access-control-allow-origin", ""),
    ("age", ""),
    ("allow", ""),
    ("authorization", ""),
    ("cache-control", ""),
    ("content-disposition", ""),
    ("content-encoding", ""),
    ("content-language", ""),
    ("content-length", ""),
    ("content-location", ""),
    ("content-range", ""),
    ("content-type", ""),
    ("cookie", ""),
    ("date", ""),
    ("etag", ""),
    ("expect", ""),
    ("expires", ""),
    ("from", ""),
    ("host", ""),
    ("if-match", ""),
    ("if-modified-since", ""),
    ("if-none-match", ""),
    ("if-range", ""),
    ("if-unmodified-since", ""),
    ("last-modified", ""),
    ("link", ""),
    ("location", ""),
    ("max-forwards", ""),
    ("proxy-authenticate", ""),
    ("proxy-authorization", ""),
    ("range", ""),
    ("referer", ""),
    ("refresh", ""),
    ("retry-after", ""),
    ("server", ""),
    ("set-cookie", ""),
    ("strict-transport-security", ""),
    ("transfer-encoding", ""),
    ("user-agent", ""),
    ("vary", ""),
    ("via", ""),
    ("www-authenticate", ""),
)
_STATIC_LEN = 61

# RFC 7541 Appendix B: the code and its bit length of symbols 0..255 and EOS (256).
# Code table taken from the `hpack` package (huffman_constants.py, MIT licence, (c) Cory Benfield).
# fmt: off
_HUFFMAN_CODES: tuple = (
    0x1ff8, 0x7fffd8, 0xfffffe2, 0xfffffe3, 0xfffffe4, 0xfffffe5, 0xfffffe6, 0xfffffe7,
    0xfffffe8, 0xffffea, 0x3ffffffc, 0xfffffe9, 0xfffffea, 0x3ffffffd, 0xfffffeb, 0xfffffec,
    0xfffffed, 0xfffffee, 0xfffffef, 0xffffff0, 0xffffff1, 0xffffff2, 0x3ffffffe, 0xffffff3,
    0xffffff4, 0xffffff5, 0xffffff6, 0xffffff7, 0xffffff8, 0xffffff9, 0xffffffa, 0xffffffb,
    0x14, 0x3f8, 0x3f9, 0xffa, 0x1ff9, 0x15, 0xf8, 0x7fa,
    0x3fa, 0x3fb, 0xf9, 0x7fb, 0xfa, 0x16, 0x17, 0x18,
    0x0, 0x1, 0x2, 0x19, 0x1a, 0x1b, 0x1c, 0x1d,
    0x1e, 0x1f, 0x5c, 0xfb, 0x7ffc, 0x20, 0xffb, 0x3fc,
    0x1ffa, 0x21, 0x5d, 0x5e, 0x5f, 0x60, 0x61, 0x62,
    0x63, 0x64, 0x65, 0x66, 0x67, 0x68, 0x69, 0x6a,
    0x6b, 0x6c, 0x6d, 0x6e, 0x6f, 0x70, 0x71, 0x72,
    0xfc, 0x73, 0xfd, 0x1ffb, 0x7fff0, 0x1ffc, 0x3ffc, 0x22,
    0x7ffd, 0x3, 0x23, 0x4, 0x24, 0x5, 0x25, 0x26,
    0x27, 0x6, 0x74, 0x75, 0x28, 0x29, 0x2a, 0x7,
    0x2b, 0x76, 0x2c, 0x8, 0x9, 0x2d, 0x77, 0x78,
    0x79, 0x7a, 0x7b, 0x7ffe, 0x7fc, 0x3ffd, 0x1ffd, 0xffffffc,
    0xfffe6, 0x3fffd2, 0xfffe7, 0xfffe8, 0x3fffd3, 0x3fffd4, 0x3fffd5, 0x7fffd9,
    0x3fffd6, 0x7fffda, 0x7fffdb, 0x7fffdc, 0x7fffdd, 0x7fffde, 0xffffeb, 0x7fffdf,
    0xffffec, 0xffffed, 0x3fffd7, 0x7fffe0, 0xffffee, 0x7fffe1, 0x7fffe2, 0x7fffe3,
    0x7fffe4, 0x1fffdc, 0x3fffd8, 0x7fffe5, 0x3fffd9, 0x7fffe6, 0x7fffe7, 0xffffef,
    0x3fffda, 0x1fffdd, 0xfffe9, 0x3fffdb, 0x3fffdc, 0x7fffe8, 0x7fffe9, 0x1fffde,
    0x7fffea, 0x3fffdd, 0x3fffde, 0xfffff0, 0x1fffdf, 0x3fffdf, 0x7fffeb, 0x7fffec,
    0x1fffe0, 0x1fffe1, 0x3fffe0, 0x1fffe2, 0x7fffed, 0x3fffe1, 0x7fffee, 0x7fffef,
    0xfffea, 0x3fffe2, 0x3fffe3, 0x3fffe4, 0x7ffff0, 0x3fffe5, 0x3fffe6, 0x7ffff1,
    0x3ffffe0, 0x3ffffe1, 0xfffeb, 0x7fff1, 0x3fffe7, 0x7ffff2, 0x3fffe8, 0x1ffffec,
    0x3ffffe2, 0x3ffffe3, 0x3ffffe4, 0x7ffffde, 0x7ffffdf, 0x3ffffe5, 0xfffff1, 0x1ffffed,
    0x7fff2, 0x1fffe3, 0x3ffffe6, 0x7ffffe0, 0x7ffffe1, 0x3ffffe7, 0x7ffffe2, 0xfffff2,
    0x1fffe4, 0x1fffe5, 0x3ffffe8, 0x3ffffe9, 0xffffffd, 0x7ffffe3, 0x7ffffe4, 0x7ffffe5,
    0xfffec, 0xfffff3, 0xfffed, 0x1fffe6, 0x3fffe9, 0x1fffe7, 0x1fffe8, 0x7ffff3,
    0x3fffea, 0x3fffeb, 0x1ffffee, 0x1ffffef, 0xfffff4, 0xfffff5, 0x3ffffea, 0x7ffff4,
    0x3ffffeb, 0x7ffffe6, 0x3ffffec, 0x3ffffed, 0x7ffffe7, 0x7ffffe8, 0x7ffffe9, 0x7ffffea,
    0x7ffffeb, 0xffffffe, 0x7ffffec, 0x7ffffed, 0x7ffffee, 0x7ffffef, 0x7fffff0, 0x3ffffee,
    0x3fffffff,
)
_HUFFMAN_LENGTHS: tuple = (
    13, 23, 28, 28, 28, 28, 28, 28, 28, 24, 30, 28, 28, 30, 28, 28,
    28, 28, 28, 28, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28, 28,
    6, 10, 10, 12, 13, 6, 8, 11, 10, 10, 8, 11, 8, 6, 6, 6,
    5, 5, 5, 6, 6, 6, 6, 6, 6, 6, 7, 8, 15, 6, 12, 10,
    13, 6, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7,
    7, 7, 7, 7, 7, 7, 7, 7, 8, 7, 8, 13, 19, 13, 14, 6,
    15, 5, 6, 5, 6, 5, 6, 6, 6, 5, 7, 7, 6, 6, 6, 5,
    6, 7, 6, 5, 5, 6, 7, 7, 7, 7, 7, 15, 11, 14, 13, 28,
    20, 22, 20, 20, 22, 22, 22, 23, 22, 23, 23, 23, 23, 23, 24, 23,
    24, 24, 22, 23, 24, 23, 23, 23, 23, 21, 22, 23, 22, 23, 23, 24,
    22, 21, 20, 22, 22, 23, 23, 21, 23, 22, 22, 24, 21, 22, 23, 23,
    21, 21, 22, 21, 23, 22, 23, 23, 20, 22, 22, 22, 23, 22, 22, 23,
    26, 26, 20, 19, 22, 23, 22, 25, 26, 26, 26, 27, 27, 26, 24, 25,
    19, 21, 26, 27, 27, 26, 27, 24, 21, 21, 26, 26, 28, 27, 27, 27,
    20, 24, 20, 21, 22, 21, 21, 23, 22, 22, 25, 25, 24, 24, 26, 23,
    26, 27, 26, 26, 27, 27, 27, 27, 27, 28, 27, 27, 27, 27, 27, 26,
    30,
)
# fmt: on

# Flags of a transition of the Huffman decoding machine.
_EMIT = 1  # the nibble completed a symbol: emit _HUFF_SYM[t]
_FAIL = 2  # the nibble completed EOS, which must never appear in a string (RFC 7541 §5.2)

# The largest integer a header block may carry: anything above is no sane length/index/size.
_MAX_INT = 2**32


def _build_huffman_machine() -> tuple[bytes, bytes, bytes, bytes]:
    """The Huffman decoder as a nibble-at-a-time state machine (built once at import).

    A state is an internal node of the code tree (the bits of a symbol read so far; the
    complete code has exactly 256 internal nodes, so a state fits in one byte); the root
    is state 0. Feeding 4 bits to a state completes at most one symbol (no code is
    shorter than 5 bits). Transition t = state * 16 + nibble gives the next state, the
    symbol emitted and the flags. A string may end only in a state whose path from the
    root is all ones and at most 7 bits long: that is valid padding (a prefix of EOS).
    """
    children: list[list[int | None]] = [[None, None]]  # >= 0: internal node; < 0: ~symbol
    for symbol in range(257):
        code = _HUFFMAN_CODES[symbol]
        length = _HUFFMAN_LENGTHS[symbol]
        node = 0
        for shift in range(length - 1, 0, -1):
            bit = (code >> shift) & 1
            child = children[node][bit]
            if child is None:
                child = len(children)
                children.append([None, None])
                children[node][bit] = child
            assert child >= 0, "the code table is not prefix-free"
            node = child
        assert children[node][code & 1] is None, "the code table is not prefix-free"
        children[node][code & 1] = ~symbol
    assert len(children) == 256, "the code table is not complete"

    accept = bytearray(256)
    node = 0
    for _ in range(8):  # the all-ones paths of 0..7 bits
        accept[node] = 1
        child = children[node][1]
        assert child is not None and child >= 0
        node = child

    next_state = bytearray(4096)
    symbols = bytearray(4096)
    flags = bytearray(4096)
    for state in range(256):
        for nibble in range(16):
            t = state * 16 + nibble
            node = state
            for shift in (3, 2, 1, 0):
                child = children[node][(nibble >> shift) & 1]
                assert child is not None, "the code table is not complete"
                if child >= 0:
                    node = child
                    continue
                node = 0
                if ~child == 256:
                    flags[t] = _FAIL
                    break
                flags[t] = _EMIT
                symbols[t] = ~child
            next_state[t] = node
    return bytes(next_state), bytes(symbols), bytes(flags), bytes(accept)


_HUFF_NEXT, _HUFF_SYM, _HUFF_FLAGS, _HUFF_ACCEPT = _build_huffman_machine()


@cython.cfunc
def _huffman_decode(block: bytes, start: cython.Py_ssize_t, stop: cython.Py_ssize_t) -> str:
    """The Huffman-coded string block[start:stop], decoded as latin-1."""
    next_state: bytes = _HUFF_NEXT
    symbols: bytes = _HUFF_SYM
    flags: bytes = _HUFF_FLAGS
    # Every code is at least 5 bits long: n octets hold at most n * 8 // 5 symbols.
    out: bytearray = bytearray((stop - start) * 8 // 5)
    n: cython.Py_ssize_t = 0
    state: cython.int = 0
    i: cython.Py_ssize_t
    octet: cython.int
    t: cython.int
    f: cython.int
    for i in range(start, stop):
        octet = block[i]
        t = (state << 4) | (octet >> 4)
        f = flags[t]
        if f:
            if f & _FAIL:
                raise HpackError("EOS symbol in a Huffman-coded string")
            out[n] = symbols[t]
            n += 1
        state = next_state[t]
        t = (state << 4) | (octet & 0x0F)
        f = flags[t]
        if f:
            if f & _FAIL:
                raise HpackError("EOS symbol in a Huffman-coded string")
            out[n] = symbols[t]
            n += 1
        state = next_state[t]
    accept: bytes = _HUFF_ACCEPT
    if not accept[state]:
        raise HpackError("invalid Huffman padding (longer than 7 bits or not a prefix of EOS)")
    return out[:n].decode("latin-1")


@cython.cclass
class Decoder:
    """The decoding context of one connection: the dynamic table shared by all its header blocks.

    A failed `decode` leaves the table in an unspecified state: the connection must end
    (COMPRESSION_ERROR), as the peer's encoder and this table no longer agree.
    """

    _static: tuple  # the static table, held here to avoid a module-global lookup per field
    _table: list  # dynamic entries (name, value), oldest first
    _size: cython.Py_ssize_t  # sum of the entry sizes (len(name) + len(value) + 32)
    _capacity: cython.Py_ssize_t  # the table size set by the peer's encoder (size updates)
    _max: cython.Py_ssize_t  # our SETTINGS_HEADER_TABLE_SIZE: the limit of size updates
    _pos: cython.Py_ssize_t  # read position in the block being decoded

    def __init__(self, max_table_size: int = 4096) -> None:
        if max_table_size < 0 or max_table_size > _MAX_INT:
            raise ValueError(f"invalid header table size {max_table_size}")
        self._static = _STATIC_TABLE
        self._table = []
        self._size = 0
        self._capacity = max_table_size
        self._max = max_table_size
        self._pos = 0

    @property
    def max_table_size(self) -> int:
        """The limit for the peer's dynamic table size updates (our SETTINGS_HEADER_TABLE_SIZE).

        Setting it does not shrink the current table: the peer's encoder keeps using its
        size until it sends a size update, which must then be within the new limit.
        """
        return self._max

    @max_table_size.setter
    def max_table_size(self, value: int) -> None:
        if value < 0 or value > _MAX_INT:
            raise ValueError(f"invalid header table size {value}")
        self._max = value

    def table(self) -> list:
        """The dynamic table entries (name, value), newest (index 62) first."""
        return list(reversed(self._table))

    def table_size(self) -> int:
        """The current size of the dynamic table in the RFC 7541 §4.1 sense."""
        return self._size

    def decode(self, block: bytes) -> list:
        """The header list of one complete header block: [(name, value), ...] in order."""
        headers: list = []
        end: cython.Py_ssize_t = len(block)
        b: cython.int
        idx: cython.Py_ssize_t
        first: cython.bint = True
        name: str
        value: str
        field: tuple
        self._pos = 0
        while self._pos < end:
            b = block[self._pos]
            if b & 0x80:  # indexed header field (§6.1)
                if b != 0xFF:  # the common case: the index fits the 7-bit prefix
                    self._pos += 1
                    idx = b & 0x7F
                else:
                    idx = self._int(block, 7)
                if 0 < idx <= _STATIC_LEN:
                    headers.append(self._static[idx - 1])
                else:
                    headers.append(self._entry(idx))
            elif b & 0x40:  # literal with incremental indexing (§6.2.1)
                idx = self._int(block, 6)
                name = self._entry(idx)[0] if idx else self._str(block)
                value = self._str(block)
                field = (name, value)
                self._add(field)
                headers.append(field)
            elif b & 0x20:  # dynamic table size update (§6.3)
                if not first:
                    raise HpackError("dynamic table size update after a header field")
                idx = self._int(block, 5)
                if idx > self._max:
                    raise HpackError(f"dynamic table size update {idx} above the limit {self._max}")
                self._capacity = idx
                self._evict(0)
                continue
            else:  # literal without indexing (0000) or never indexed (0001) (§6.2.2, §6.2.3)
                idx = self._int(block, 4)
                name = self._entry(idx)[0] if idx else self._str(block)
                value = self._str(block)
                headers.append((name, value))
            first = False
        return headers

    @cython.cfunc
    @cython.exceptval(-1)
    def _int(self, block: bytes, prefix_bits: cython.int) -> cython.Py_ssize_t:
        """The integer at self._pos with an N-bit prefix (§5.1); the caller checked pos < len."""
        pos: cython.Py_ssize_t = self._pos
        end: cython.Py_ssize_t = len(block)
        mask: cython.int = (1 << prefix_bits) - 1
        value: cython.Py_ssize_t = block[pos] & mask
        shift: cython.int = 0
        b: cython.int
        pos += 1
        if value == mask:
            while True:
                if pos >= end:
                    raise HpackError("truncated integer")
                b = block[pos]
                pos += 1
                value += cython.cast(cython.Py_ssize_t, b & 0x7F) << shift
                if value > _MAX_INT:
                    raise HpackError("integer too large")
                if not b & 0x80:
                    break
                shift += 7
                if shift > 28:  # only zero continuation octets could follow: reject
                    raise HpackError("integer too long")
        self._pos = pos
        return value

    @cython.cfunc
    def _str(self, block: bytes) -> str:
        """The string literal at self._pos (§5.2), Huffman-coded or raw, as latin-1."""
        end: cython.Py_ssize_t = len(block)
        if self._pos >= end:
            raise HpackError("truncated header block: string literal expected")
        huffman: cython.bint = (block[self._pos] & 0x80) != 0
        length: cython.Py_ssize_t = self._int(block, 7)
        start: cython.Py_ssize_t = self._pos
        if length > end - start:
            raise HpackError("truncated string literal")
        self._pos = start + length
        if huffman:
            return _huffman_decode(block, start, start + length)
        return block[start : start + length].decode("latin-1")

    @cython.cfunc
    def _entry(self, idx: cython.Py_ssize_t) -> tuple:
        """The (name, value) at index `idx` of the combined static + dynamic table (§2.3.3)."""
        n: cython.Py_ssize_t
        if idx <= 0:
            raise HpackError("header table index 0")
        if idx <= _STATIC_LEN:
            return self._static[idx - 1]
        n = len(self._table)
        idx -= _STATIC_LEN + 1
        if idx >= n:
            raise HpackError(f"header table index {idx + _STATIC_LEN + 1} past the table")
        return self._table[n - 1 - idx]

    @cython.cfunc
    def _add(self, field: tuple) -> None:
        """Insert a field into the dynamic table, evicting the oldest entries (§4.4)."""
        size: cython.Py_ssize_t = len(field[0]) + len(field[1]) + 32
        if size > self._capacity:  # larger than the table: it empties the table
            self._table.clear()
            self._size = 0
            return
        self._evict(size)
        self._table.append(field)
        self._size += size

    @cython.cfunc
    def _evict(self, room: cython.Py_ssize_t) -> None:
        """Evict the oldest entries until `room` more octets fit into the table (§4.3)."""
        table: list = self._table
        old: tuple
        while self._size + room > self._capacity and table:
            old = table.pop(0)
            self._size -= len(old[0]) + len(old[1]) + 32


def encode_int(value: int, prefix_bits: int, first: int) -> bytes:
    """HPACK integer with an N-bit prefix; `first` holds the pattern bits above the prefix (e.g. 0x00, 0x40, 0x80)."""
    limit: cython.Py_ssize_t = (1 << prefix_bits) - 1
    if value < limit:
        return bytes((first | value,))
    out = bytearray((first | limit,))
    value -= limit
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def encode_literal(name: bytes, value: bytes) -> bytes:
    """'Literal Header Field without Indexing — New Name' (0x00 prefix), no Huffman: what a server can
    emit without keeping an encoder dynamic table."""
    return b"".join((b"\x00", encode_int(len(name), 7, 0), name, encode_int(len(value), 7, 0), value))


def encode_indexed_name_literal(index: int, value: bytes) -> bytes:
    """'Literal Header Field without Indexing — Indexed Name' (0000 + 4-bit prefix index), no Huffman."""
    return b"".join((encode_int(index, 4, 0x00), encode_int(len(value), 7, 0), value))
