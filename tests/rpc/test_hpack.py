"""The HPACK codec of the gRPC server (`cadence_fast._core.hpack`), as loaded by the package
(compiled in an installed build) and straight from its .py source (uncompiled).

Test vectors: RFC 7541 Appendix C, and header blocks produced once by the `hpack` package's
Encoder (hpack 4.2.0; the python-hyper reference implementation), pasted here as hex.
"""

from __future__ import annotations

import importlib.util
import random
from pathlib import Path
from types import ModuleType

import pytest

import cadence_fast._core as core


def _source_module() -> ModuleType:
    path = Path(core.__file__).parent / "hpack.py"
    spec = importlib.util.spec_from_file_location("_hpack_uncompiled", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_SOURCE = _source_module()


@pytest.fixture(params=["package", "source"])
def hp(request: pytest.FixtureRequest) -> ModuleType:
    return core.hpack if request.param == "package" else _SOURCE  # type: ignore[attr-defined,no-any-return]


def _h(text: str) -> bytes:
    return bytes.fromhex("".join(text.split()))


def _decode_ok(hp: ModuleType, block: bytes, decoder: object | None = None) -> list:
    return (decoder or hp.Decoder()).decode(block)  # type: ignore[attr-defined,no-any-return]


# --- RFC 7541 Appendix C --------------------------------------------------------------


def test_c1_integer_representation(hp: ModuleType) -> None:
    assert hp.encode_int(10, 5, 0x00) == b"\x0a"
    assert hp.encode_int(1337, 5, 0x00) == b"\x1f\x9a\x0a"
    assert hp.encode_int(42, 8, 0x00) == b"\x2a"


def test_c2_1_literal_with_indexing(hp: ModuleType) -> None:
    d = hp.Decoder()
    block = _h("400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572")
    assert d.decode(block) == [("custom-key", "custom-header")]
    assert d.table() == [("custom-key", "custom-header")]
    assert d.table_size() == 55


def test_c2_2_literal_without_indexing(hp: ModuleType) -> None:
    d = hp.Decoder()
    assert d.decode(_h("040c 2f73 616d 706c 652f 7061 7468")) == [(":path", "/sample/path")]
    assert d.table() == []


def test_c2_3_literal_never_indexed(hp: ModuleType) -> None:
    d = hp.Decoder()
    assert d.decode(_h("1008 7061 7373 776f 7264 0673 6563 7265 74")) == [("password", "secret")]
    assert d.table() == []


def test_c2_4_indexed(hp: ModuleType) -> None:
    d = hp.Decoder()
    assert d.decode(b"\x82") == [(":method", "GET")]
    assert d.table() == []


_C3_REQUESTS = [
    _h("8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d"),
    _h("8286 84be 5808 6e6f 2d63 6163 6865"),
    _h("8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65"),
]
_C4_REQUESTS = [
    _h("8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff"),
    _h("8286 84be 5886 a8eb 1064 9cbf"),
    _h("8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf"),
]
_REQUEST_HEADERS = [
    [(":method", "GET"), (":scheme", "http"), (":path", "/"), (":authority", "www.example.com")],
    [
        (":method", "GET"),
        (":scheme", "http"),
        (":path", "/"),
        (":authority", "www.example.com"),
        ("cache-control", "no-cache"),
    ],
    [
        (":method", "GET"),
        (":scheme", "https"),
        (":path", "/index.html"),
        (":authority", "www.example.com"),
        ("custom-key", "custom-value"),
    ],
]
_REQUEST_TABLES = [
    ([(":authority", "www.example.com")], 57),
    ([("cache-control", "no-cache"), (":authority", "www.example.com")], 110),
    ([("custom-key", "custom-value"), ("cache-control", "no-cache"), (":authority", "www.example.com")], 164),
]


@pytest.mark.parametrize("blocks", [_C3_REQUESTS, _C4_REQUESTS], ids=["C.3-plain", "C.4-huffman"])
def test_c3_c4_requests_in_sequence(hp: ModuleType, blocks: list[bytes]) -> None:
    d = hp.Decoder()
    for block, headers, (table, size) in zip(blocks, _REQUEST_HEADERS, _REQUEST_TABLES, strict=True):
        assert d.decode(block) == headers
        assert d.table() == table
        assert d.table_size() == size


_C5_RESPONSES = [
    _h(
        "4803 3330 3258 0770 7269 7661 7465 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133"
        "2032 303a 3133 3a32 3120 474d 546e 1768 7474 7073 3a2f 2f77 7777 2e65 7861 6d70"
        "6c65 2e63 6f6d"
    ),
    _h("4803 3330 37c1 c0bf"),
    _h(
        "88c1 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 3220 474d"
        "54c0 5a04 677a 6970 7738 666f 6f3d 4153 444a 4b48 514b 425a 584f 5157 454f 5049"
        "5541 5851 5745 4f49 553b 206d 6178 2d61 6765 3d33 3630 303b 2076 6572 7369 6f6e"
        "3d31"
    ),
]
_C6_RESPONSES = [
    _h(
        "4882 6402 5885 aec3 771a 4b61 96d0 7abe 9410 54d4 44a8 2005 9504 0b81 66e0 82a6"
        "2d1b ff6e 919d 29ad 1718 63c7 8f0b 97c8 e9ae 82ae 43d3"
    ),
    _h("4883 640e ffc1 c0bf"),
    _h(
        "88c1 6196 d07a be94 1054 d444 a820 0595 040b 8166 e084 a62d 1bff c05a 839b d9ab"
        "77ad 94e7 821d d7f2 e6c7 b335 dfdf cd5b 3960 d5af 2708 7f36 72c1 ab27 0fb5 291f"
        "9587 3160 65c0 03ed 4ee5 b106 3d50 07"
    ),
]
_DATE1 = "Mon, 21 Oct 2013 20:13:21 GMT"
_DATE2 = "Mon, 21 Oct 2013 20:13:22 GMT"
_LOCATION = "https://www.example.com"
_COOKIE = "foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1"
_RESPONSE_HEADERS = [
    [(":status", "302"), ("cache-control", "private"), ("date", _DATE1), ("location", _LOCATION)],
    [(":status", "307"), ("cache-control", "private"), ("date", _DATE1), ("location", _LOCATION)],
    [
        (":status", "200"),
        ("cache-control", "private"),
        ("date", _DATE2),
        ("location", _LOCATION),
        ("content-encoding", "gzip"),
        ("set-cookie", _COOKIE),
    ],
]
_RESPONSE_TABLES = [
    ([("location", _LOCATION), ("date", _DATE1), ("cache-control", "private"), (":status", "302")], 222),
    ([(":status", "307"), ("location", _LOCATION), ("date", _DATE1), ("cache-control", "private")], 222),
    ([("set-cookie", _COOKIE), ("content-encoding", "gzip"), ("date", _DATE2)], 215),
]


@pytest.mark.parametrize("blocks", [_C5_RESPONSES, _C6_RESPONSES], ids=["C.5-plain", "C.6-huffman"])
def test_c5_c6_responses_with_eviction(hp: ModuleType, blocks: list[bytes]) -> None:
    d = hp.Decoder(max_table_size=256)
    for block, headers, (table, size) in zip(blocks, _RESPONSE_HEADERS, _RESPONSE_TABLES, strict=True):
        assert d.decode(block) == headers
        assert d.table() == table
        assert d.table_size() == size


# --- blocks of the hpack package's Encoder ----------------------------------------------

_GRPC_REQUEST = [
    (":method", "POST"),
    (":scheme", "http"),
    (":path", "/uber.cadence.api.v1.WorkerAPI/PollForDecisionTask"),
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
# One hpack.Encoder (Huffman, incremental indexing of everything): the request, a second
# request (mostly indexed), then a response-like block with a never-indexed field and latin-1.
_ENCODER_BLOCKS = [
    _h(
        "838644a562d8cb62e41c85a8855c75997ee15f91ecea5b21d7918d67a28c27b2f9486418f56f1a3aff418a"
        "089d5c0b8170dc75e6595f8b1d75d0620d263d4c4d65647a8a9acac8b4c7602bb6d2e04082497f864d8335"
        "05b11f40899acac8b24d494f6a7f856df7df7e9f4088b2b22c82d9dcc42f8b20e42d442ad2d87a925aa440"
        "87b2b22c41d1416c8a20e42d442ac4a0c5a93f4089b2b22c5a88790d54df84aec3a4ff408d20e42d442ac4"
        "a0c5a92b543a4b85b632d8b4c7409520e42d442ac4a0c5a92b5068ec1d9e96ee5b1063d5840ae25ddf4095"
        "20e42d442ac4a0c5a92b4a51a6db0ab772d8831eaf840aeeae0f"
    ),
    _h(
        "838644ab62d8cb62e41c85a8855c75997ee15f91ecea5b21d7918da54567aa4be5219063d5bc68eb78f4d7"
        "4152593fc9c8c7c67f06847df7dea7c5c4c3c2c1c0"
    ),
    _h("88c91f088aba51d85b14f2bfa5fdff4086f2b50349aa0f8920e5ffffad4fffffbb"),
]
_SECOND_REQUEST = list(_GRPC_REQUEST)
_SECOND_REQUEST[2] = (":path", "/uber.cadence.api.v1.WorkerAPI/RespondDecisionTaskCompleted")
_SECOND_REQUEST[7] = ("grpc-timeout", "9998m")
_ENCODER_HEADERS = [
    _GRPC_REQUEST,
    _SECOND_REQUEST,
    [
        (":status", "200"),
        ("content-type", "application/grpc"),
        ("authorization", "Bearer x.y.z"),
        ("x-latin1", "caf\xe9 \xff"),
    ],
]
# A fresh hpack.Encoder(huffman=False): the same request with raw string literals.
_ENCODER_PLAIN = _h(
    "838644322f756265722e636164656e63652e6170692e76312e576f726b65724150492f506f6c6c466f7244"
    "65636973696f6e5461736b410e3132372e302e302e313a373833335f106170706c69636174696f6e2f6772"
    "70637a0e677270632d676f2f312e35342e304002746508747261696c657273400c677270632d74696d656f"
    "75740635393939396d400b7270632d7365727669636510636164656e63652d66726f6e74656e64400a7270"
    "632d63616c6c65720e636164656e63652d636c69656e74400c7270632d656e636f64696e670570726f746f"
    "4013636164656e63652d636c69656e742d6e616d6507756265722d676f401e636164656e63652d636c6965"
    "6e742d6c6962726172792d76657273696f6e05312e322e37401e636164656e63652d636c69656e742d6665"
    "61747572652d76657273696f6e05312e372e30"
)


def test_blocks_of_the_hpack_package_encoder(hp: ModuleType) -> None:
    d = hp.Decoder()
    for block, headers in zip(_ENCODER_BLOCKS, _ENCODER_HEADERS, strict=True):
        assert d.decode(block) == headers
    assert hp.Decoder().decode(_ENCODER_PLAIN) == _GRPC_REQUEST


# --- round trips of the encoder functions ----------------------------------------------

_INTS = [
    0,
    1,
    2,
    14,
    15,
    16,
    30,
    31,
    32,
    62,
    63,
    64,
    126,
    127,
    128,
    254,
    255,
    256,
    1337,
    16383,
    16384,
    2**21,
    2**32,
]


@pytest.mark.parametrize("prefix_bits", range(1, 9))
def test_encode_int_is_the_rfc_integer(hp: ModuleType, prefix_bits: int) -> None:
    limit = (1 << prefix_bits) - 1
    first = 0xFF ^ limit  # every pattern bit set: they must survive untouched
    for value in _INTS:
        out = hp.encode_int(value, prefix_bits, first & 0xFF)
        assert out[0] & ~limit & 0xFF == first & 0xFF
        # Decode by the RFC 7541 §5.1 pseudocode.
        decoded = out[0] & limit
        if decoded == limit:
            shift = 0
            for octet in out[1:]:
                decoded += (octet & 0x7F) << shift
                shift += 7
            assert all(octet & 0x80 for octet in out[1:-1]) and not out[-1] & 0x80
        else:
            assert len(out) == 1
        assert decoded == value


def test_indexed_fields_through_the_decoder(hp: ModuleType) -> None:
    static = hp._STATIC_TABLE
    block = b"".join(hp.encode_int(i, 7, 0x80) for i in range(1, 62))
    assert hp.Decoder().decode(block) == list(static)


def test_size_update_through_the_decoder(hp: ModuleType) -> None:
    d = hp.Decoder()
    d.decode(b"\x40\x01n\x01v")
    assert d.table_size() == 34
    d.decode(hp.encode_int(33, 5, 0x20))  # smaller than the entry: evicts it
    assert d.table() == []
    d.decode(hp.encode_int(4096, 5, 0x20) + b"\x40\x01n\x01v")
    assert d.table() == [("n", "v")]


@pytest.mark.parametrize("length", [0, 1, 126, 127, 128, 300, 20000])
def test_encode_literal_round_trip(hp: ModuleType, length: int) -> None:
    value = bytes(i % 256 for i in range(length))  # every octet value: latin-1 maps them 1:1
    name = b"x-" + b"k" * length
    block = hp.encode_literal(name, value)
    assert block[0] == 0x00
    d = hp.Decoder()
    assert d.decode(block) == [(name.decode("latin-1"), value.decode("latin-1"))]
    assert d.table() == []  # without indexing


def test_encode_indexed_name_literal_round_trip(hp: ModuleType) -> None:
    d = hp.Decoder()
    d.decode(b"\x40\x06x-dyn1\x01a\x40\x06x-dyn2\x01b")  # indexes 63 (x-dyn1) and 62 (x-dyn2)
    blocks = [
        hp.encode_indexed_name_literal(8, b"200"),  # :status
        hp.encode_indexed_name_literal(14, b"500"),  # below the 4-bit prefix limit
        hp.encode_indexed_name_literal(15, b"utf-8"),  # exactly the limit: one continuation octet
        hp.encode_indexed_name_literal(31, b"application/grpc"),
        hp.encode_indexed_name_literal(58, b"cadence-fast"),
        hp.encode_indexed_name_literal(62, b"v" * 200),
        hp.encode_indexed_name_literal(63, b""),
    ]
    assert all(block[0] & 0xF0 == 0 for block in blocks)
    assert d.decode(b"".join(blocks)) == [
        (":status", "200"),
        (":status", "500"),
        ("accept-charset", "utf-8"),
        ("content-type", "application/grpc"),
        ("user-agent", "cadence-fast"),
        ("x-dyn2", "v" * 200),
        ("x-dyn1", ""),
    ]
    assert d.table() == [("x-dyn2", "b"), ("x-dyn1", "a")]


def _huffman_encode(hp: ModuleType, data: bytes) -> bytes:
    bits = 0
    nbits = 0
    for octet in data:
        bits = (bits << hp._HUFFMAN_LENGTHS[octet]) | hp._HUFFMAN_CODES[octet]
        nbits += hp._HUFFMAN_LENGTHS[octet]
    pad = -nbits % 8
    bits = (bits << pad) | ((1 << pad) - 1)  # padding: the most significant bits of EOS
    return (bits).to_bytes((nbits + pad) // 8, "big")


def test_huffman_strings_of_every_symbol(hp: ModuleType) -> None:
    rng = random.Random(7541)
    samples = [bytes(range(256)), b"", b"a", b"\xff\xfe\x00"]
    samples += [bytes(rng.randrange(256) for _ in range(rng.randrange(1, 60))) for _ in range(200)]
    for data in samples:
        coded = _huffman_encode(hp, data)
        block = b"\x00\x01x" + hp.encode_int(len(coded), 7, 0x80) + coded
        assert hp.Decoder().decode(block) == [("x", data.decode("latin-1"))], data


def test_entry_larger_than_the_table_empties_it(hp: ModuleType) -> None:
    d = hp.Decoder(max_table_size=100)
    d.decode(b"\x40\x01a\x01b\x40\x01c\x01d")
    assert d.table() == [("c", "d"), ("a", "b")]
    assert d.table_size() == 68
    big = b"\x40\x01e" + hp.encode_int(68, 7, 0) + b"f" * 68  # 1 + 68 + 32 = 101 > 100
    assert d.decode(big) == [("e", "f" * 68)]  # still emitted, but not kept
    assert d.table() == []
    assert d.table_size() == 0
    exact = b"\x40\x01g" + hp.encode_int(67, 7, 0) + b"h" * 67  # exactly 100: fits
    d.decode(exact)
    assert d.table() == [("g", "h" * 67)]


def test_eviction_makes_room_oldest_first(hp: ModuleType) -> None:
    d = hp.Decoder(max_table_size=3 * 34)
    d.decode(b"\x40\x01a\x011\x40\x01b\x012\x40\x01c\x013")
    assert [name for name, _ in d.table()] == ["c", "b", "a"]
    d.decode(b"\x40\x01d\x014")
    assert [name for name, _ in d.table()] == ["d", "c", "b"]
    assert d.decode(b"\xbe\xc0") == [("d", "4"), ("b", "2")]


def test_max_table_size_is_the_limit_of_size_updates(hp: ModuleType) -> None:
    d = hp.Decoder()
    assert d.max_table_size == 4096
    d.max_table_size = 256
    assert d.max_table_size == 256
    d.decode(hp.encode_int(256, 5, 0x20))
    with pytest.raises(hp.HpackError):
        d.decode(hp.encode_int(257, 5, 0x20))


# --- malformed blocks -------------------------------------------------------------------

_MALFORMED = {
    "truncated integer": b"\xff",
    "truncated integer continuation": b"\xff\x80\x80",
    "integer above 2**32": b"\xff" + b"\xff\xff\xff\xff\x7f",
    "integer with endless zero continuations": b"\xff" + b"\x80" * 12 + b"\x01",
    "truncated string": b"\x40\x05abc",
    "truncated value": b"\x00\x03abc\x05de",
    "missing name": b"\x40",
    "missing value": b"\x04",
    "missing value length continuation": b"\x04\x7f",
    "truncated huffman string": b"\x04\x85\xff",
    "index 0": b"\x80",
    "literal name index past the static table": b"\x0f\x2f\x01a",
    "index past the static table": b"\xbe",
    "index far past the table": b"\xff\xff\xff\x03",
    "huffman padding of zeros": b"\x04\x81\x18",  # 'a' (00011) + 000
    "huffman padding longer than 7 bits": b"\x04\x82\x1f\xff",  # 'a' + 11 one bits
    "huffman string of padding only": b"\x04\x81\xff",
    "huffman EOS symbol": b"\x04\x84\xff\xff\xff\xff",  # EOS (30 ones) + 2 bits
    "huffman EOS after a symbol": b"\x04\x85\x1f\xff\xff\xff\xff",
    "table size update above the limit": b"\x3f\xe2\x1f",  # 31 + 4066 = 4097
    "table size update after a field": b"\x82\x20",
}


@pytest.mark.parametrize("block", list(_MALFORMED.values()), ids=list(_MALFORMED))
def test_malformed_blocks_raise_hpack_error(hp: ModuleType, block: bytes) -> None:
    with pytest.raises(hp.HpackError):
        hp.Decoder().decode(block)


def test_index_past_the_dynamic_table(hp: ModuleType) -> None:
    d = hp.Decoder()
    d.decode(b"\x40\x01a\x01b")
    assert d.decode(b"\xbe") == [("a", "b")]
    with pytest.raises(hp.HpackError):
        d.decode(b"\xbf")


def test_truncated_blocks_raise_only_hpack_error(hp: ModuleType) -> None:
    # A cut inside a field is an HpackError; a cut between fields decodes the fields before it.
    for blocks in (_C4_REQUESTS, _C6_RESPONSES, _ENCODER_BLOCKS):
        for block in blocks:
            for cut in range(len(block)):
                try:
                    hp.Decoder(max_table_size=4096).decode(block[:cut])
                except hp.HpackError:
                    pass
                except Exception as exc:  # pragma: no cover - the failure report
                    raise AssertionError(f"{block[:cut].hex()}: {exc!r}") from exc


def test_hpack_error_is_an_exception(hp: ModuleType) -> None:
    assert issubclass(hp.HpackError, Exception)
