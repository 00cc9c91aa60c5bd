"""Task tokens: opaque to clients, they name the run, the scheduled event, the attempt and the kind.

Format: one version byte, then compact JSON. Workers echo tokens verbatim, so any
change must keep decoding the old version.
"""

from __future__ import annotations

import itertools
import json
import uuid
from dataclasses import dataclass

from cadence_fast.errors import BadRequestError

_VERSION = b"\x01"

KIND_DECISION = 0
KIND_ACTIVITY = 1
KIND_QUERY = 2

#: Request ids of record-started transitions need only differ from every other one a run
#: ever stored: a per-process random prefix and a counter do that for ~0.1 us, where
#: str(uuid4()) (os.urandom, a UUID object, formatting) cost ~1.5 % of the server's CPU
#: (perf-findings F6). Run ids stay uuid4: clients parse them.
_REQUEST_ID_PREFIX = uuid.uuid4().hex[:16]
_request_seq = itertools.count(1)


def request_id() -> str:
    """A request id unique across runs and server processes."""
    return f"{_REQUEST_ID_PREFIX}-{next(_request_seq)}"


@dataclass(slots=True, frozen=True)
class TaskToken:
    kind: int
    domain_id: str
    workflow_id: str
    run_id: str
    schedule_id: int
    attempt: int = 0
    activity_id: str = ""
    query_id: str = ""

    def encode(self) -> bytes:
        fields = [self.kind, self.domain_id, self.workflow_id, self.run_id, self.schedule_id, self.attempt,
                  self.activity_id, self.query_id]  # fmt: skip
        return _VERSION + json.dumps(fields, separators=(",", ":")).encode()


def decode(data: bytes, expected_kind: int | None = None) -> TaskToken:
    """Parse a token; anything malformed (or of another kind) -> BadRequestError naming task_token."""
    if not data:
        raise BadRequestError("Task token not set on request.")
    try:
        if data[:1] != _VERSION:
            raise ValueError("version")
        kind, domain_id, workflow_id, run_id, schedule_id, attempt, activity_id, query_id = json.loads(
            data[1:]
        )
        token = TaskToken(int(kind), str(domain_id), str(workflow_id), str(run_id), int(schedule_id), int(attempt),
                          str(activity_id), str(query_id))  # fmt: skip
    except (ValueError, TypeError, UnicodeDecodeError):
        raise BadRequestError("Error deserializing task token: task_token is malformed.") from None
    if expected_kind is not None and token.kind != expected_kind:
        raise BadRequestError("task_token is not a token of this kind of task.")
    return token
