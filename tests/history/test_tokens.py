"""Task tokens: what a worker echoes back must decode, in every format ever written."""

from __future__ import annotations

import json

import pytest

from cadence_fast.errors import BadRequestError
from cadence_fast.history import tokens

RUN = ("d1f3cbf8-2f02-47ac-bce1-b5f65b03115b", "order-42", "4dc480ac-ba49-4c2a-9d37-0f1e2a3b4c5d")


@pytest.mark.parametrize(
    "token",
    [
        tokens.TaskToken(tokens.KIND_DECISION, *RUN, 5, 2),
        tokens.TaskToken(tokens.KIND_ACTIVITY, *RUN, 12, 0, "activity-ü"),
        tokens.TaskToken(tokens.KIND_QUERY, *RUN, 0, 0, "", "q-1"),
        tokens.TaskToken(tokens.KIND_DECISION, RUN[0], "with\x00nul", RUN[2], 3),  # written as version 1
    ],
)
def test_round_trip(token: tokens.TaskToken) -> None:
    assert tokens.decode(token.encode()) == token


def test_version_1_tokens_still_decode() -> None:
    """Tokens handed out before version 2 (compact JSON) stay valid."""
    data = b"\x01" + json.dumps([1, *RUN, 7, 1, "a1", ""], separators=(",", ":")).encode()
    assert tokens.decode(data) == tokens.TaskToken(tokens.KIND_ACTIVITY, *RUN, 7, 1, "a1")


@pytest.mark.parametrize(
    "data", [b"\x02garbage", b"\x020\x00d\x00w\x00r\x00five\x000\x00\x00", b"\x03" + b"x" * 10, b"\x02\xff\xfe"]
)
def test_malformed_tokens_are_bad_requests(data: bytes) -> None:
    with pytest.raises(BadRequestError, match="task_token"):
        tokens.decode(data)


def test_request_ids_are_unique() -> None:
    ids = {tokens.request_id() for _ in range(1000)}
    assert len(ids) == 1000
