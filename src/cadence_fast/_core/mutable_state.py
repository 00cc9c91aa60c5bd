"""Mutable state of one workflow run and the per-transition event building.

This is the hot path of every transition (DESIGN §4, §7): it holds a run's state as
plain Python objects, applies a transition to it (new events, buffering, the decision
state machine), and records what changed in a `Mutation` so the engine can write ONE
delta (info + touched map rows + new history batch + new queue tasks).

Pure-Python-mode Cython: it imports nothing of cadence_fast (only the protobuf classes
of the official client's IDL and the standard library), so it runs compiled or not.

Conventions: times and durations are int nanoseconds; event id 0 means "none";
BUFFERED_EVENT_ID marks an event that waits in the buffer (Cadence's -123).
"""

from __future__ import annotations

import operator
import pickle

from cadence.api.v1 import history_pb2, tasklist_pb2
from google.protobuf import duration_pb2, timestamp_pb2

EMPTY_EVENT_ID = 0
BUFFERED_EVENT_ID = -123

# map kinds (persistence.records.MapKind; repeated here because _core imports nothing of ours)
MAP_ACTIVITY = 1
MAP_TIMER = 2
MAP_CHILD_EXECUTION = 3
MAP_REQUEST_CANCEL = 4
MAP_SIGNAL = 5
MAP_SIGNAL_REQUESTED = 6
MAP_BUFFERED_EVENT = 7

STATE_CREATED = 0
STATE_RUNNING = 1
STATE_COMPLETED = 2

NS = 1_000_000_000

# Events that arrive from outside the decider: buffered while a decision is started
# (client-contract §4a invariant 1).
_HistoryEvent = history_pb2.HistoryEvent
_History = history_pb2.History
_Timestamp = timestamp_pb2.Timestamp
_Duration = duration_pb2.Duration


def ts(ns: int) -> timestamp_pb2.Timestamp:
    return _Timestamp(seconds=ns // NS, nanos=ns % NS)


def dur(ns: int) -> duration_pb2.Duration:
    return _Duration(seconds=ns // NS, nanos=ns % NS)


def dur_ns(d: duration_pb2.Duration) -> int:
    return d.seconds * NS + d.nanos


def ts_ns(t: timestamp_pb2.Timestamp) -> int:
    return t.seconds * NS + t.nanos


def _encode(values: tuple) -> bytes:
    # values: an attrgetter's tuple of the FIELDS (one C call, not a getattr per field:
    # encode_info runs on every transition). The bytes are those of pickling that tuple.
    return pickle.dumps(values, protocol=5)


def _decode(obj: object, fields: tuple[str, ...], data: bytes) -> None:
    values = pickle.loads(data)
    # Older rows may have fewer fields: the rest keep their defaults.
    for f, v in zip(fields, values, strict=False):
        setattr(obj, f, v)


class ActivityInfo:
    """One pending activity (map row keyed by its scheduled event id)."""

    FIELDS = (
        "schedule_id", "scheduled_time", "activity_id", "activity_type", "task_list", "domain",
        "input", "header", "schedule_to_close", "schedule_to_start", "start_to_close", "heartbeat_timeout",
        "started_id", "started_time", "request_id", "started_identity", "details", "last_heartbeat_time",
        "cancel_requested", "cancel_request_id", "attempt", "retry_policy", "last_failure_reason",
        "last_failure_details", "expiration_time", "attempt_scheduled_time", "last_worker_identity",
    )  # fmt: skip
    __slots__ = FIELDS

    def __init__(self) -> None:
        self.schedule_id = 0
        self.scheduled_time = 0
        self.activity_id = ""
        self.activity_type = ""
        self.task_list = ""
        self.domain = ""
        self.input = b""  # Payload.data
        self.header = b""  # serialized Header
        self.schedule_to_close = 0
        self.schedule_to_start = 0
        self.start_to_close = 0
        self.heartbeat_timeout = 0
        self.started_id = EMPTY_EVENT_ID
        self.started_time = 0
        self.request_id = ""
        self.started_identity = ""
        self.details = b""  # last heartbeat details (Payload.data)
        self.last_heartbeat_time = 0
        self.cancel_requested = False
        self.cancel_request_id = EMPTY_EVENT_ID
        self.attempt = 0
        self.retry_policy = b""  # serialized RetryPolicy, b"" = none
        self.last_failure_reason = ""
        self.last_failure_details = b""
        self.expiration_time = 0
        self.attempt_scheduled_time = 0
        self.last_worker_identity = ""

    def encode(self) -> bytes:
        return _encode(_activity_fields(self))

    @staticmethod
    def decode(data: bytes) -> ActivityInfo:
        a = ActivityInfo()
        _decode(a, ActivityInfo.FIELDS, data)
        return a


class TimerInfo:
    """One pending user timer (map row keyed by timer id)."""

    FIELDS = ("timer_id", "started_id", "expiry_time")
    __slots__ = FIELDS

    def __init__(self, timer_id: str = "", started_id: int = 0, expiry_time: int = 0) -> None:
        self.timer_id = timer_id
        self.started_id = started_id
        self.expiry_time = expiry_time

    def encode(self) -> bytes:
        return _encode(_timer_fields(self))

    @staticmethod
    def decode(data: bytes) -> TimerInfo:
        t = TimerInfo()
        _decode(t, TimerInfo.FIELDS, data)
        return t


class Mutation:
    """What one transition changed: written as one UpdateWorkflow / CreateWorkflow."""

    __slots__ = (
        "events", "dirty", "transfer", "timers", "visibility", "now", "condition_next_event_id",
        "decision_scheduled", "closed", "new_run", "touched",
    )  # fmt: skip

    def __init__(self, now: int, condition_next_event_id: int) -> None:
        self.events: list = []  # new HistoryEvent protos, dense ids
        self.dirty: set = set()  # (map kind, key) touched: upsert if present, else delete
        self.transfer: list = []  # (task type, data)
        self.timers: list = []  # (visibility time ns, task type, data)
        self.visibility = False  # the visibility row changed (start, close, upsert)
        self.now = now
        self.condition_next_event_id = condition_next_event_id
        self.decision_scheduled = False
        self.closed = False
        self.new_run = None  # (MutableState, CreateWorkflow) of a continue-as-new in this transition
        self.touched = False  # the execution info changed without events or map rows (still a write)


class MutableState:
    """The state of one run. Attributes in INFO_FIELDS form the encoded execution info."""

    INFO_FIELDS = (
        "domain_id", "domain_name", "workflow_id", "run_id", "first_run_id", "workflow_type", "task_list",
        "execution_timeout", "task_timeout", "state", "close_status", "next_event_id", "create_request_id",
        "start_time", "close_time", "execution_time", "last_processed_event",
        "decision_schedule_id", "decision_started_id", "decision_attempt", "decision_request_id",
        "decision_timeout", "decision_scheduled_time", "decision_started_time", "decision_original_scheduled_time",
        "cancel_requested", "cancel_request_id", "signal_count", "memo", "search_attributes",
        "close_event_id", "retry_policy", "attempt", "cron_schedule", "expiration_time", "buffered_seq",
        "parent", "identity", "last_update_time", "history_size", "decision_backoff_until", "retention",
        "decision_identity", "start_input", "start_header", "sticky_task_list", "sticky_schedule_to_start",
        "decision_sticky", "cron_overlap_policy",
    )  # fmt: skip
    __slots__ = INFO_FIELDS + (
        "activities",
        "activity_ids",
        "timers",
        "signal_requested",
        "buffered",
        "history",
        "history_complete",
        "history_bytes",
        "children",
        "external_cancels",
        "external_signals",
    )

    def __init__(self) -> None:
        self.domain_id = ""
        self.domain_name = ""
        self.workflow_id = ""
        self.run_id = ""
        self.first_run_id = ""
        self.workflow_type = ""
        self.task_list = ""
        self.execution_timeout = 0
        self.task_timeout = 0
        self.state = STATE_RUNNING
        self.close_status = 0
        self.next_event_id = 1
        self.create_request_id = ""
        self.start_time = 0
        self.close_time = 0
        self.execution_time = 0
        self.last_processed_event = EMPTY_EVENT_ID
        self.decision_schedule_id = EMPTY_EVENT_ID
        self.decision_started_id = EMPTY_EVENT_ID
        self.decision_attempt = 0
        self.decision_request_id = ""
        self.decision_timeout = 0
        self.decision_scheduled_time = 0
        self.decision_started_time = 0
        self.decision_original_scheduled_time = 0
        self.cancel_requested = False
        self.cancel_request_id = ""
        self.signal_count = 0
        self.memo = b""  # serialized Memo
        self.search_attributes = b""  # serialized SearchAttributes
        self.close_event_id = EMPTY_EVENT_ID
        self.retry_policy = b""
        self.attempt = 0
        self.cron_schedule = ""
        self.expiration_time = 0
        self.buffered_seq = 0
        self.parent: tuple | None = None  # (domain_id, domain_name, workflow_id, run_id, initiated_id)
        self.identity = ""
        self.last_update_time = 0
        self.history_size = 0
        self.decision_backoff_until = 0
        self.retention = 0  # ns the closed run is kept (the domain's retention at start)
        self.decision_identity = ""
        # the start request's input and header, kept for runs that retry or cron (their successor reuses them)
        self.start_input = b""
        self.start_header = b""
        # sticky execution: decisions go to the worker's own list while it answers in time
        self.sticky_task_list = ""
        self.sticky_schedule_to_start = 0
        self.decision_sticky = False  # the pending decision was scheduled on the sticky list
        self.cron_overlap_policy = 0  # api.v1 CronOverlapPolicy, kept by every run of a cron chain
        # maps (rows of their own in the store)
        self.activities: dict = {}  # schedule id -> ActivityInfo
        self.activity_ids: dict = {}  # activity id -> schedule id
        self.timers: dict = {}  # timer id -> TimerInfo
        self.signal_requested: set = set()
        self.buffered: list = []  # [(seq key, HistoryEvent)] in arrival order
        # initiated event id -> dict of builtins: pending children, outgoing cancel requests and signals
        self.children: dict = {}
        self.external_cancels: dict = {}
        self.external_signals: dict = {}
        # recent history as stored batches (serialized History messages), for poll replies
        self.history: list = []
        self.history_complete = False  # self.history holds every event from 1
        self.history_bytes = 0

    # --- encoding ---------------------------------------------------------------------

    def encode_info(self) -> bytes:
        return _encode(_info_fields(self))

    @staticmethod
    def load(info: bytes, maps: dict) -> MutableState:
        ms = MutableState()
        _decode(ms, MutableState.INFO_FIELDS, info)
        for data in maps.get(MAP_ACTIVITY, {}).values():
            a = ActivityInfo.decode(data)
            ms.activities[a.schedule_id] = a
            ms.activity_ids[a.activity_id] = a.schedule_id
        for data in maps.get(MAP_TIMER, {}).values():
            t = TimerInfo.decode(data)
            ms.timers[t.timer_id] = t
        ms.signal_requested = set(maps.get(MAP_SIGNAL_REQUESTED, {}).keys())
        for kind, target in (
            (MAP_CHILD_EXECUTION, ms.children),
            (MAP_REQUEST_CANCEL, ms.external_cancels),
            (MAP_SIGNAL, ms.external_signals),
        ):
            for key, data in maps.get(kind, {}).items():
                target[int(key)] = pickle.loads(data)
        buffered = maps.get(MAP_BUFFERED_EVENT, {})
        for key in sorted(buffered):
            ms.buffered.append((key, _HistoryEvent.FromString(buffered[key])))
        return ms

    def encode_maps(self) -> dict:
        """Every map row, for a create."""
        return {
            MAP_ACTIVITY: {str(k): a.encode() for k, a in self.activities.items()},
            MAP_TIMER: {k: t.encode() for k, t in self.timers.items()},
            MAP_SIGNAL_REQUESTED: {k: b"" for k in self.signal_requested},
            MAP_BUFFERED_EVENT: {k: e.SerializeToString() for k, e in self.buffered},
            MAP_CHILD_EXECUTION: {str(k): pickle.dumps(v, protocol=5) for k, v in self.children.items()},
            MAP_REQUEST_CANCEL: {
                str(k): pickle.dumps(v, protocol=5) for k, v in self.external_cancels.items()
            },
            MAP_SIGNAL: {str(k): pickle.dumps(v, protocol=5) for k, v in self.external_signals.items()},
        }

    def map_delta(self, mut: Mutation) -> tuple[list, list]:
        """(upserts, deletes) for the map rows this mutation touched."""
        upserts = []
        deletes = []
        buffered = None
        for kind, key in mut.dirty:
            value = None
            if kind == MAP_ACTIVITY:
                a = self.activities.get(int(key))
                if a is not None:
                    value = a.encode()
            elif kind == MAP_TIMER:
                t = self.timers.get(key)
                if t is not None:
                    value = t.encode()
            elif kind == MAP_SIGNAL_REQUESTED:
                if key in self.signal_requested:
                    value = b""
            elif kind == MAP_CHILD_EXECUTION or kind == MAP_REQUEST_CANCEL or kind == MAP_SIGNAL:
                table = (
                    self.children
                    if kind == MAP_CHILD_EXECUTION
                    else (self.external_cancels if kind == MAP_REQUEST_CANCEL else self.external_signals)
                )
                v = table.get(int(key))
                if v is not None:
                    value = pickle.dumps(v, protocol=5)
            elif kind == MAP_BUFFERED_EVENT:
                if buffered is None:
                    buffered = dict(self.buffered)
                e = buffered.get(key)
                if e is not None:
                    value = e.SerializeToString()
            if value is None:
                deletes.append((kind, key))
            else:
                upserts.append((kind, key, value))
        return upserts, deletes

    # --- predicates -------------------------------------------------------------------

    def is_open(self) -> bool:
        return self.state != STATE_COMPLETED

    def has_pending_decision(self) -> bool:
        return self.decision_schedule_id != EMPTY_EVENT_ID

    def has_started_decision(self) -> bool:
        return self.decision_started_id != EMPTY_EVENT_ID

    # --- events -----------------------------------------------------------------------

    def add_event(self, mut: Mutation, **attrs: object) -> history_pb2.HistoryEvent:
        """Append an event with the next dense id (attrs: one `*_event_attributes=`)."""
        event = _HistoryEvent(event_id=self.next_event_id, event_time=ts(mut.now), **attrs)
        self.next_event_id += 1
        mut.events.append(event)
        return event

    def new_event(self, mut: Mutation) -> history_pb2.HistoryEvent:
        """add_event for attributes the caller fills in place (event.<kind>.field = ...):
        cheaper than building the attributes message and copying it in."""
        event = _HistoryEvent(event_id=self.next_event_id, event_time=ts(mut.now))
        self.next_event_id += 1
        mut.events.append(event)
        return event

    def add_async_event(self, mut: Mutation, **attrs: object) -> history_pb2.HistoryEvent:
        """An event from outside the decider: buffered while a decision is started."""
        if self.decision_started_id == EMPTY_EVENT_ID:
            return self.add_event(mut, **attrs)
        event = _HistoryEvent(event_id=BUFFERED_EVENT_ID, event_time=ts(mut.now), **attrs)
        self.buffered_seq += 1
        key = f"{self.buffered_seq:012d}"
        self.buffered.append((key, event))
        mut.dirty.add((MAP_BUFFERED_EVENT, key))
        return event

    def new_async_event(self, mut: Mutation) -> history_pb2.HistoryEvent:
        """add_async_event for attributes the caller fills in place (see new_event).

        A buffered event is encoded when the mutation is written, so filling it after
        this call is in time."""
        if self.decision_started_id == EMPTY_EVENT_ID:
            return self.new_event(mut)
        event = _HistoryEvent(event_id=BUFFERED_EVENT_ID, event_time=ts(mut.now))
        self.buffered_seq += 1
        key = f"{self.buffered_seq:012d}"
        self.buffered.append((key, event))
        mut.dirty.add((MAP_BUFFERED_EVENT, key))
        return event

    def flush_buffered(self, mut: Mutation) -> int:
        """Give buffered events their ids, after the decision's outputs. Returns how many."""
        if not self.buffered:
            return 0
        started_ids: dict = {}
        child_started_ids: dict = {}
        count = 0
        for key, event in self.buffered:
            mut.dirty.add((MAP_BUFFERED_EVENT, key))
            event.event_id = self.next_event_id
            self.next_event_id += 1
            kind = event.WhichOneof("attributes")
            if kind == "activity_task_started_event_attributes":
                sid = event.activity_task_started_event_attributes.scheduled_event_id
                started_ids[sid] = event.event_id
                a = self.activities.get(sid)
                if a is not None and a.started_id == BUFFERED_EVENT_ID:
                    a.started_id = event.event_id
                    mut.dirty.add((MAP_ACTIVITY, str(sid)))
            elif kind in _ACTIVITY_CLOSE_KINDS:
                attrs = getattr(event, kind)
                if attrs.started_event_id == BUFFERED_EVENT_ID:
                    attrs.started_event_id = started_ids.get(attrs.scheduled_event_id, EMPTY_EVENT_ID)
            elif kind == "child_workflow_execution_started_event_attributes":
                iid = event.child_workflow_execution_started_event_attributes.initiated_event_id
                child_started_ids[iid] = event.event_id
                c = self.children.get(iid)
                if c is not None and c["started_id"] == BUFFERED_EVENT_ID:
                    c["started_id"] = event.event_id
                    mut.dirty.add((MAP_CHILD_EXECUTION, str(iid)))
            elif kind in _CHILD_CLOSE_KINDS:
                attrs = getattr(event, kind)
                if attrs.started_event_id == BUFFERED_EVENT_ID:
                    attrs.started_event_id = child_started_ids.get(attrs.initiated_event_id, EMPTY_EVENT_ID)
            mut.events.append(event)
            count += 1
        self.buffered = []
        return count

    def drop_buffered(self, mut: Mutation, key: str) -> None:
        self.buffered = [(k, e) for k, e in self.buffered if k != key]
        mut.dirty.add((MAP_BUFFERED_EVENT, key))

    # --- decisions --------------------------------------------------------------------

    def schedule_decision(self, mut: Mutation, attempt: int = -1) -> history_pb2.HistoryEvent | None:
        """DecisionTaskScheduled + its transfer task, unless one is already pending."""
        if self.decision_schedule_id != EMPTY_EVENT_ID or self.state == STATE_COMPLETED:
            return None
        if attempt >= 0:
            self.decision_attempt = attempt
        sticky = self.sticky_task_list != ""
        event = self.new_event(mut)
        attrs = event.decision_task_scheduled_event_attributes
        task_list = attrs.task_list
        if sticky:
            task_list.name = self.sticky_task_list
            task_list.kind = tasklist_pb2.TASK_LIST_KIND_STICKY
        else:
            task_list.name = self.task_list
            task_list.kind = tasklist_pb2.TASK_LIST_KIND_NORMAL
        timeout = attrs.start_to_close_timeout
        timeout.seconds = self.task_timeout // NS
        timeout.nanos = self.task_timeout % NS
        attrs.attempt = self.decision_attempt
        self.decision_sticky = sticky
        self.decision_schedule_id = event.event_id
        self.decision_started_id = EMPTY_EVENT_ID
        self.decision_request_id = ""
        self.decision_timeout = self.task_timeout
        self.decision_scheduled_time = mut.now
        if not self.decision_original_scheduled_time:
            self.decision_original_scheduled_time = mut.now
        self.decision_backoff_until = 0
        mut.decision_scheduled = True
        return event

    def start_decision(self, mut: Mutation, identity: str, request_id: str) -> history_pb2.HistoryEvent:
        event = self.new_event(mut)
        attrs = event.decision_task_started_event_attributes
        attrs.scheduled_event_id = self.decision_schedule_id
        attrs.identity = identity
        attrs.request_id = request_id
        self.decision_started_id = event.event_id
        self.decision_request_id = request_id
        self.decision_started_time = mut.now
        return event

    def clear_stickiness(self) -> None:
        self.sticky_task_list = ""
        self.sticky_schedule_to_start = 0

    def clear_decision(self) -> None:
        self.decision_schedule_id = EMPTY_EVENT_ID
        self.decision_started_id = EMPTY_EVENT_ID
        self.decision_request_id = ""
        self.decision_scheduled_time = 0
        self.decision_started_time = 0

    def complete_decision(
        self, mut: Mutation, identity: str, binary_checksum: str = ""
    ) -> history_pb2.HistoryEvent:
        event = self.new_event(mut)
        attrs = event.decision_task_completed_event_attributes
        attrs.scheduled_event_id = self.decision_schedule_id
        attrs.started_event_id = self.decision_started_id
        attrs.identity = identity
        attrs.binary_checksum = binary_checksum
        self.last_processed_event = self.decision_started_id
        self.clear_decision()
        self.decision_attempt = 0
        self.decision_original_scheduled_time = 0
        return event

    def fail_decision(
        self, mut: Mutation, cause: int, details: bytes, identity: str, reason: str = ""
    ) -> history_pb2.HistoryEvent:
        failure = history_pb2.DecisionTaskFailedEventAttributes(
            scheduled_event_id=self.decision_schedule_id,
            started_event_id=self.decision_started_id,
            cause=cause,  # type: ignore[arg-type]
            identity=identity,
            request_id=self.decision_request_id,
        )
        failure.failure.reason = reason
        failure.failure.details = details
        event = self.add_event(mut, decision_task_failed_event_attributes=failure)
        self.clear_decision()
        self.decision_attempt += 1
        return event

    def time_out_decision(self, mut: Mutation, timeout_type: int) -> history_pb2.HistoryEvent:
        event = self.add_event(
            mut,
            decision_task_timed_out_event_attributes=history_pb2.DecisionTaskTimedOutEventAttributes(
                scheduled_event_id=self.decision_schedule_id,
                started_event_id=self.decision_started_id,
                timeout_type=timeout_type,  # type: ignore[arg-type]
                cause=1,  # type: ignore[arg-type]  # DECISION_TASK_TIMED_OUT_CAUSE_TIMEOUT
                request_id=self.decision_request_id,
            ),
        )
        self.clear_decision()
        self.decision_attempt += 1
        return event

    # --- activities -------------------------------------------------------------------

    def add_activity(self, mut: Mutation, a: ActivityInfo) -> None:
        self.activities[a.schedule_id] = a
        self.activity_ids[a.activity_id] = a.schedule_id
        mut.dirty.add((MAP_ACTIVITY, str(a.schedule_id)))

    def touch_activity(self, mut: Mutation, a: ActivityInfo) -> None:
        mut.dirty.add((MAP_ACTIVITY, str(a.schedule_id)))

    def delete_activity(self, mut: Mutation, schedule_id: int) -> None:
        a = self.activities.pop(schedule_id, None)
        if a is not None and self.activity_ids.get(a.activity_id) == schedule_id:
            del self.activity_ids[a.activity_id]
        mut.dirty.add((MAP_ACTIVITY, str(schedule_id)))

    # --- timers -----------------------------------------------------------------------

    def add_timer(self, mut: Mutation, t: TimerInfo) -> None:
        self.timers[t.timer_id] = t
        mut.dirty.add((MAP_TIMER, t.timer_id))

    def delete_timer(self, mut: Mutation, timer_id: str) -> None:
        self.timers.pop(timer_id, None)
        mut.dirty.add((MAP_TIMER, timer_id))

    # --- children, outgoing signals and cancel requests ---------------------------------

    def touch_map(self, mut: Mutation, kind: int, key: int) -> None:
        """A child / external-signal / external-cancel entry changed (or went)."""
        mut.dirty.add((kind, str(key)))

    # --- signals ----------------------------------------------------------------------

    def add_signal_requested(self, mut: Mutation, request_id: str) -> None:
        self.signal_requested.add(request_id)
        mut.dirty.add((MAP_SIGNAL_REQUESTED, request_id))

    # --- history cache ----------------------------------------------------------------

    def append_history(self, data: bytes, limit: int) -> None:
        """Keep a committed batch's bytes for poll replies while under `limit` bytes."""
        if not self.history_complete:
            return
        self.history.append(data)
        self.history_bytes += len(data)
        if self.history_bytes > limit:
            self.history = []
            self.history_bytes = 0
            self.history_complete = False

    def set_history(self, batches: list, limit: int) -> None:
        total = 0
        for b in batches:
            total += len(b)
        if total <= limit:
            self.history = list(batches)
            self.history_bytes = total
            self.history_complete = True


_CHILD_CLOSE_KINDS = frozenset(
    (
        "child_workflow_execution_completed_event_attributes",
        "child_workflow_execution_failed_event_attributes",
        "child_workflow_execution_canceled_event_attributes",
        "child_workflow_execution_timed_out_event_attributes",
        "child_workflow_execution_terminated_event_attributes",
    )
)

_ACTIVITY_CLOSE_KINDS = frozenset(
    (
        "activity_task_completed_event_attributes",
        "activity_task_failed_event_attributes",
        "activity_task_timed_out_event_attributes",
        "activity_task_canceled_event_attributes",
    )
)


_activity_fields = operator.attrgetter(*ActivityInfo.FIELDS)
_timer_fields = operator.attrgetter(*TimerInfo.FIELDS)
_info_fields = operator.attrgetter(*MutableState.INFO_FIELDS)


def _task_list(name: str) -> object:
    return tasklist_pb2.TaskList(name=name, kind=tasklist_pb2.TASK_LIST_KIND_NORMAL)


def history_batch_bytes(events: list) -> bytes:
    """One transaction's events as a serialized History message (concatenable).

    Each event is encoded on its own and framed as History's field 1 (tag 0x0a, varint
    length): the same bytes as History(events=events).SerializeToString(), without
    copying every event into a new History first (that copy cost as much as the encoding)."""
    parts = []
    for e in events:
        data = e.SerializeToString()
        n = len(data)
        if n < 0x80:
            parts.append(bytes((0x0A, n)))
        else:
            head = bytearray(b"\x0a")
            while n > 0x7F:
                head.append((n & 0x7F) | 0x80)
                n >>= 7
            head.append(n)
            parts.append(bytes(head))
        parts.append(data)
    return b"".join(parts)
