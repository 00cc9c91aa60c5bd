"""Search attribute payloads: decode (validated against the registry) and encode back."""

from __future__ import annotations

import json

import pytest
from cadence.api.v1 import common_pb2

from cadence_fast.errors import BadRequestError
from cadence_fast.visibility.search_attributes import (
    SearchAttributeRegistry,
    decode_search_attributes,
    encode_search_attributes,
    format_datetime,
    parse_datetime,
)

REGISTRY = SearchAttributeRegistry({"Env": "keyword", "Score": "double"})
T0 = 1_704_067_200_000_000_000  # 2024-01-01T00:00:00Z


def sa(**fields: object) -> common_pb2.SearchAttributes:
    msg = common_pb2.SearchAttributes()
    for key, value in fields.items():
        msg.indexed_fields[key].data = value if isinstance(value, bytes) else json.dumps(value).encode()
    return msg


def test_decode_each_type() -> None:
    values = decode_search_attributes(
        sa(
            CustomKeywordField="k",
            CustomStringField="free text",
            CustomIntField=7,
            CustomDoubleField=2,
            CustomBoolField=True,
            CustomDatetimeField="2024-01-01T00:00:00.25Z",
            CadenceChangeVersion=["id-1", "id-2"],
            Env="prod",
            Score=1.5,
        ),
        REGISTRY,
    )
    assert values == {
        "CustomKeywordField": "k",
        "CustomStringField": "free text",
        "CustomIntField": 7,
        "CustomDoubleField": 2.0,
        "CustomBoolField": True,
        "CustomDatetimeField": T0 + 250_000_000,
        "CadenceChangeVersion": ["id-1", "id-2"],
        "Env": "prod",
        "Score": 1.5,
    }
    assert decode_search_attributes(None, REGISTRY) == {}
    assert decode_search_attributes(sa(CustomDatetimeField=T0), REGISTRY) == {"CustomDatetimeField": T0}


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"Nope": "x"}, r"search attribute 'Nope' is not registered"),
        ({"env": "x"}, r"'env' is not registered \(did you mean 'Env'\?\)"),
        ({"WorkflowID": "x"}, r"'WorkflowID' is a read-only Cadence system attribute"),
        ({"CloseStatus": 1}, r"read-only"),
        ({"CustomIntField": "7"}, r"'CustomIntField' of type int expects an int, got '7'"),
        ({"CustomIntField": 1.5}, r"expects an int"),
        ({"CustomIntField": True}, r"expects an int"),
        ({"CustomIntField": [1, 2]}, r"expects an int"),
        ({"CustomDoubleField": "x"}, r"expects a double"),
        ({"CustomBoolField": 1}, r"expects a bool"),
        ({"CustomKeywordField": 5}, r"'CustomKeywordField' of type keyword expects a keyword"),
        ({"CustomKeywordField": ["a", 1]}, r"expects a keyword"),
        ({"CustomDatetimeField": "tomorrow"}, r"'CustomDatetimeField' of type datetime"),
        ({"CustomDatetimeField": 1.5}, r"expects a datetime"),
        ({"Env": b"{not json"}, r"'Env': the value is not valid JSON"),
        ({"Env": b"null"}, r"'Env': the value is empty"),
    ],
)
def test_decode_rejects(fields: dict[str, object], message: str) -> None:
    with pytest.raises(BadRequestError, match=message):
        decode_search_attributes(sa(**fields), REGISTRY)


def test_encode_round_trip() -> None:
    stored = {
        "CustomDatetimeField": T0 + 1,
        "Env": "prod",
        "CadenceChangeVersion": ["a"],
        "CustomIntField": 3,
    }
    msg = encode_search_attributes(stored, REGISTRY)
    assert json.loads(msg.indexed_fields["CustomDatetimeField"].data) == "2024-01-01T00:00:00.000000001Z"
    assert json.loads(msg.indexed_fields["Env"].data) == "prod"
    assert decode_search_attributes(msg, REGISTRY) == stored


@pytest.mark.parametrize(
    ("text", "ns"),
    [
        ("2024-01-01T00:00:00Z", T0),
        ("2024-01-01T00:00:00z", T0),
        ("2024-01-01t02:00:00+02:00", T0),
        ("2023-12-31T19:00:00-0500", T0),
        ("2024-01-01T00:00:00.123456789Z", T0 + 123_456_789),
        ("2024-01-01T00:00:00.1Z", T0 + 100_000_000),
        ("2024-01-01", T0),
        ("2024-01-01 00:00:00", T0),
        ("1970-01-01T00:00:00Z", 0),
    ],
)
def test_parse_datetime(text: str, ns: int) -> None:
    assert parse_datetime(text) == ns


def test_format_datetime() -> None:
    assert format_datetime(T0) == "2024-01-01T00:00:00Z"
    assert format_datetime(T0 + 120_000_000) == "2024-01-01T00:00:00.12Z"
    assert parse_datetime(format_datetime(T0 + 987_654_321)) == T0 + 987_654_321
