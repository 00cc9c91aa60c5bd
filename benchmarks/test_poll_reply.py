"""Poll-reply assembly: stored history batches (encoded bytes) -> PollForDecisionTaskResponse bytes.

What a decision poll costs once matching handed out the task and the Started event is
committed: join the run's cached batch bytes, build the response (history/views.py),
and serialize it, as gRPC does before sending. Two histories: the bench workflow's
second decision (one activity, 9 events) and a long-lived run's (500 activities, 3,003
events).

`splice` is the measured alternative proposed in /work/notes/perf-findings.md: the
response is serialized WITHOUT its history and the stored bytes are appended as field 8
(`history`) on the wire, so the events are never parsed and re-encoded.
"""

from __future__ import annotations

from typing import Any

import pytest
from cadence.api.v1 import service_worker_pb2
from support import core_module
from workloads import decision_handler, run_to_decision, using_core

from cadence_fast.history import views

HISTORY_FIELD_TAG = bytes([8 << 3 | 2])  # PollForDecisionTaskResponse.history, length-delimited


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


@pytest.mark.parametrize("activities", [1, 500])
def test_decision_poll_reply(benchmark: Any, impl: str, activities: int) -> None:
    core = core_module("mutable_state", impl)
    benchmark.group = f"poll reply: decision task, history after {activities} activities"
    with using_core(core):
        ms = run_to_decision(core, decision_handler(), activities)

        def assemble() -> bytes:
            history = b"".join(ms.history)
            return views.decision_task_response(ms, history, 0).SerializeToString()

        wire = benchmark(assemble)
    reply = service_worker_pb2.PollForDecisionTaskResponse.FromString(wire)
    assert len(reply.history.events) == ms.next_event_id - 1


@pytest.mark.parametrize("activities", [1, 500])
def test_decision_poll_reply_splice(benchmark: Any, activities: int) -> None:
    core = core_module("mutable_state", "pure")
    benchmark.group = f"poll reply: decision task, history after {activities} activities"
    with using_core(core):
        ms = run_to_decision(core, decision_handler(), activities)

        def assemble() -> bytes:
            history = b"".join(ms.history)
            head = views.decision_task_response(ms, b"", 0)
            head.total_history_bytes = len(history)
            return head.SerializeToString() + HISTORY_FIELD_TAG + _varint(len(history)) + history

        wire = benchmark(assemble)
    reply = service_worker_pb2.PollForDecisionTaskResponse.FromString(wire)
    assert len(reply.history.events) == ms.next_event_id - 1
