"""Task tokens: opaque to clients, they name the run, the scheduled event, the attempt and the kind.

Format: one version byte, then the fields. Version 2 (written now): the eight fields as
UTF-8 text separated by NUL, a third of JSON's cost to write and read (perf: three
tokens a workflow, each encoded and decoded); a token whose ids contain a NUL is written
as version 1. Version 1: compact JSON of the same list. Workers echo tokens verbatim, so
every version ever written keeps decoding.
"""

from __future__ import annotations

import itertools
import json
import uuid
from dataclasses import dataclass

from cadence_fast.errors import BadRequestError

_VERSION = b"\x01"  # JSON
_VERSION_2 = b"\x02"  # NUL-separated text
_SEP = "\x00"

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
        text = (
            f"{self.kind}\x00{self.domain_id}\x00{self.workflow_id}\x00{self.run_id}\x00{self.schedule_id}"
            f"\x00{self.attempt}\x00{self.activity_id}\x00{self.query_id}"
        )
        if text.count(_SEP) == 7:
            return _VERSION_2 + text.encode()
        fields = [self.kind, self.domain_id, self.workflow_id, self.run_id, self.schedule_id, self.attempt,
                  self.activity_id, self.query_id]  # fmt: skip
        return _VERSION + json.dumps(fields, separators=(",", ":")).encode()


def decode(data: bytes, expected_kind: int | None = None) -> TaskToken:
    """Parse a token; anything malformed (or of another kind) -> BadRequestError naming task_token."""
    if not data:
        raise BadRequestError("Task token not set on request.")
    try:
        version = data[:1]
        if version == _VERSION_2:
            kind, domain_id, workflow_id, run_id, schedule_id, attempt, activity_id, query_id = (
                data[1:].decode().split(_SEP)
            )
            token = TaskToken(int(kind), domain_id, workflow_id, run_id, int(schedule_id), int(attempt),
                              activity_id, query_id)  # fmt: skip
        elif version == _VERSION:
            kind, domain_id, workflow_id, run_id, schedule_id, attempt, activity_id, query_id = json.loads(
                data[1:]
            )
            token = TaskToken(int(kind), str(domain_id), str(workflow_id), str(run_id), int(schedule_id),
                              int(attempt), str(activity_id), str(query_id))  # fmt: skip
        else:
            raise ValueError("version")
    except (ValueError, TypeError, UnicodeDecodeError):
        raise BadRequestError("Error deserializing task token: task_token is malformed.") from None
    if expected_kind is not None and token.kind != expected_kind:
        raise BadRequestError("task_token is not a token of this kind of task.")
    return token
