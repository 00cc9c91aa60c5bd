"""Queue task types and the compact encodings of queue-task payloads.

Payloads are small tuples of builtins (never repr/eval): they carry what an executor
needs to re-validate the task against mutable state. All-int payloads (nearly every task:
event ids, attempts, timeout types) are struct-packed behind a marker byte, about 4x
cheaper than pickle on every transition (perf-findings F7); anything else is pickled.
Pickle data starts with its PROTO opcode (0x80), so both forms (and rows written before
the struct form existed) decode.
"""

from __future__ import annotations

import json
import pickle
import struct
from typing import Any

from cadence.api.v1 import common_pb2

# transfer task types (Cadence's ids)
TRANSFER_DECISION = 0
TRANSFER_ACTIVITY = 1
TRANSFER_CLOSE = 2  # notify the parent, apply the parent close policy
TRANSFER_CANCEL = 3  # request cancel of another workflow
TRANSFER_START_CHILD = 4
TRANSFER_SIGNAL = 5  # signal another workflow

# timer task types (Cadence's ids; 7 is ours: a backoff before retrying a failing decision)
TIMER_DECISION_TIMEOUT = 0
TIMER_ACTIVITY_TIMEOUT = 1
TIMER_USER = 2
TIMER_WORKFLOW_TIMEOUT = 3
TIMER_DELETE_HISTORY = 4
TIMER_ACTIVITY_RETRY = 5
TIMER_WORKFLOW_BACKOFF = 6
TIMER_DECISION_BACKOFF = 7


_INTS_MARKER = 1  # first byte of a struct-packed all-int payload (pickle's is 0x80)
_INTS = [struct.Struct(f"<B{n}q") for n in range(5)]  # marker + n little-endian int64
_INT_MIN, _INT_MAX = -(1 << 63), (1 << 63) - 1


def pack(*values: Any) -> bytes:
    if len(values) < len(_INTS):
        for v in values:
            if type(v) is not int or not _INT_MIN <= v <= _INT_MAX:
                break
        else:
            return _INTS[len(values)].pack(_INTS_MARKER, *values)
    return pickle.dumps(values, protocol=5)


def unpack(data: bytes) -> tuple[Any, ...]:
    if not data:
        return ()
    if data[0] == _INTS_MARKER:
        return _INTS[(len(data) - 1) >> 3].unpack(data)[1:]
    value = pickle.loads(data)
    return tuple(value)


def search_attributes_values(data: bytes) -> dict[str, object]:
    """Decoded JSON values of a serialized SearchAttributes (non-JSON payloads kept as text)."""
    if not data:
        return {}
    attrs = common_pb2.SearchAttributes.FromString(data)
    out: dict[str, object] = {}
    for key, payload in attrs.indexed_fields.items():
        raw = payload.data
        try:
            out[key] = json.loads(raw)
        except ValueError:
            out[key] = raw.decode("utf-8", "replace")
    return out
