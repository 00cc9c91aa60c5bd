"""Queue task types and the compact encodings of queue-task payloads.

Payloads are small tuples of builtins, pickled (never repr/eval): they carry what an
executor needs to re-validate the task against mutable state.
"""

from __future__ import annotations

import json
import pickle
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


def pack(*values: Any) -> bytes:
    return pickle.dumps(values, protocol=5)


def unpack(data: bytes) -> tuple[Any, ...]:
    if not data:
        return ()
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
