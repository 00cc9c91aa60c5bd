"""Activity and workflow retry policies, decided as Go Cadence decides them.

Units: every duration and time is int nanoseconds (times since the Unix epoch, UTC), as
everywhere in the engine. A policy arrives as the api.v1 `common_pb2.RetryPolicy`, the bytes
the engine keeps in mutable state, or an already-converted `RetryPolicy` (cheapest: convert
once when the activity or run is created, then call `next_retry_delay` per failure).

Go's rules (common.ValidateRetryPolicy, history's getBackoffInterval), with two defaults the
official Python client needs: it leaves `initial_interval` and `backoff_coefficient` unset
when the user did not give them, so 0 means 1 s and 2.0 here (Go would reject both).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from cadence.api.v1 import common_pb2, workflow_pb2
from google.protobuf import duration_pb2

from cadence_fast.errors import BadRequestError

NS = 1_000_000_000
DEFAULT_INITIAL_INTERVAL = NS
DEFAULT_BACKOFF_COEFFICIENT = 2.0

# Reasons the server itself writes when a payload is over its size limit: retrying cannot
# help, so Go never retries them, whatever the policy says (FAILURE_DETAILS_EXCEEDS_LIMIT
# stays retryable there too).
NEVER_RETRIED_REASONS = frozenset(
    {
        "CANCEL_DETAILS_EXCEEDS_LIMIT",
        "COMPLETE_RESULT_EXCEEDS_LIMIT",
        "HEARTBEAT_EXCEEDS_LIMIT",
        "DECISION_BLOB_SIZE_EXCEEDS_LIMIT",
    }
)
TIMEOUT_REASON_PREFIX = "cadenceInternal:Timeout "


def timeout_reason(timeout_type: int) -> str:
    """The failure reason a timeout retries under, e.g. "cadenceInternal:Timeout START_TO_CLOSE",
    so a policy can list it in non_retryable_error_reasons (timeout_type: api.v1 TimeoutType)."""
    return TIMEOUT_REASON_PREFIX + workflow_pb2.TimeoutType.Name(timeout_type).removeprefix("TIMEOUT_TYPE_")


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """A retry policy with defaults applied; intervals in ns, 0 = no limit."""

    initial_interval: int = DEFAULT_INITIAL_INTERVAL
    backoff_coefficient: float = DEFAULT_BACKOFF_COEFFICIENT
    maximum_interval: int = 0
    maximum_attempts: int = 0  # total attempts including the first; 0 = unlimited
    expiration_interval: int = 0
    non_retryable_error_reasons: frozenset[str] = frozenset()

    @classmethod
    def from_proto(cls, rp: common_pb2.RetryPolicy) -> RetryPolicy:
        """Convert (no validation: call validate_retry_policy where the request comes in)."""
        return cls(
            initial_interval=_ns(rp.initial_interval) or DEFAULT_INITIAL_INTERVAL,
            backoff_coefficient=rp.backoff_coefficient or DEFAULT_BACKOFF_COEFFICIENT,
            maximum_interval=_ns(rp.maximum_interval),
            maximum_attempts=rp.maximum_attempts,
            expiration_interval=_ns(rp.expiration_interval),
            non_retryable_error_reasons=frozenset(rp.non_retryable_error_reasons),
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> RetryPolicy:
        """From a serialized common_pb2.RetryPolicy, the form mutable state stores."""
        return cls.from_proto(common_pb2.RetryPolicy.FromString(data))


def as_policy(policy: RetryPolicy | common_pb2.RetryPolicy | bytes) -> RetryPolicy:
    if isinstance(policy, RetryPolicy):
        return policy
    if isinstance(policy, bytes):
        return RetryPolicy.from_bytes(policy)
    return RetryPolicy.from_proto(policy)


def validate_retry_policy(policy: common_pb2.RetryPolicy | None, *, require_limit: bool = True) -> None:
    """Go's common.ValidateRetryPolicy; raises BadRequestError with Go's message (naming the field).

    No policy means no retry and is valid. `require_limit`: Go rejects a policy whose
    maximum_attempts and expiration_interval are both 0 (it would retry forever), for
    workflow starts AND for ScheduleActivityTask decisions; pass False only to be laxer."""
    if policy is None:
        return
    initial = _ns(policy.initial_interval)
    if initial < 0:
        raise BadRequestError("InitialIntervalInSeconds must be greater than 0 on retry policy.")
    coefficient = policy.backoff_coefficient
    if not math.isfinite(coefficient):
        raise BadRequestError("BackoffCoefficient must be a finite number on retry policy.")
    if coefficient != 0 and coefficient < 1:
        raise BadRequestError("BackoffCoefficient cannot be less than 1 on retry policy.")
    maximum = _ns(policy.maximum_interval)
    if maximum < 0:
        raise BadRequestError("MaximumIntervalInSeconds cannot be less than 0 on retry policy.")
    if 0 < maximum < initial:
        raise BadRequestError(
            "MaximumIntervalInSeconds cannot be less than InitialIntervalInSeconds on retry policy."
        )
    if policy.maximum_attempts < 0:
        raise BadRequestError("MaximumAttempts cannot be less than 0 on retry policy.")
    expiration = _ns(policy.expiration_interval)
    if expiration < 0:
        raise BadRequestError("ExpirationIntervalInSeconds cannot be less than 0 on retry policy.")
    if require_limit and policy.maximum_attempts == 0 and expiration == 0:
        raise BadRequestError(
            "MaximumAttempts and ExpirationIntervalInSeconds are both 0. "
            "At least one of them must be specified."
        )


def next_retry_delay(
    policy: RetryPolicy | common_pb2.RetryPolicy | bytes,
    attempt: int,
    failure_reason: str,
    *,
    now: int,
    expiration_time: int = 0,
) -> int | None:
    """The wait (ns) before attempt `attempt + 1`, or None: no retry, record the failure.

    attempt: the 0-based attempt that just failed. expiration_time: absolute ns, 0 = none
    (from activity_expiration_time / workflow_expiration_time). Go's getBackoffInterval:
    - no retry if maximum_attempts is 0 and there is no expiration time (nothing bounds it);
    - no retry if attempt + 1 >= maximum_attempts (the count includes the first attempt);
    - delay = initial_interval * backoff_coefficient ** attempt, capped at maximum_interval
      (an overflowing delay becomes maximum_interval, or no retry without one);
    - no retry if now + delay is AFTER expiration_time (landing exactly on it still retries);
    - no retry for the size-limit reasons (NEVER_RETRIED_REASONS) or a reason listed in
      non_retryable_error_reasons (exact match).
    The caller also skips retrying an activity whose cancellation was requested, as Go does.
    """
    p = as_policy(policy)
    if p.maximum_attempts == 0 and expiration_time == 0:
        return None
    if p.maximum_attempts > 0 and attempt + 1 >= p.maximum_attempts:
        return None
    try:
        delay = int(p.initial_interval * p.backoff_coefficient**attempt)
    except OverflowError:  # coefficient ** attempt, or int() of an infinite product
        delay = -1
    if delay <= 0:
        if p.maximum_interval <= 0:
            return None
        delay = p.maximum_interval
    if p.maximum_interval > 0:
        delay = min(delay, p.maximum_interval)
    if expiration_time and now + delay > expiration_time:
        return None
    if failure_reason in NEVER_RETRIED_REASONS or failure_reason in p.non_retryable_error_reasons:
        return None
    return delay


def activity_expiration_time(
    policy: RetryPolicy | common_pb2.RetryPolicy | bytes, scheduled_time: int, schedule_to_close: int
) -> int:
    """When an activity stops being retried: scheduled time + expiration_interval, bounded by
    its schedule-to-close timeout (past which it times out anyway; Go stretches that timeout to
    cover the expiration). 0 (no bound) only if neither is set."""
    p = as_policy(policy)
    limits = [d for d in (p.expiration_interval, schedule_to_close) if d > 0]
    return scheduled_time + min(limits) if limits else 0


def workflow_expiration_time(
    policy: RetryPolicy | common_pb2.RetryPolicy | bytes, first_start_time: int
) -> int:
    """When a workflow stops being retried: the FIRST run's start + expiration_interval (every
    retried run inherits it; Go's WorkflowExecutionStarted.expiration_time), 0 = none."""
    p = as_policy(policy)
    return first_start_time + p.expiration_interval if p.expiration_interval > 0 else 0


def _ns(d: duration_pb2.Duration) -> int:
    return d.seconds * NS + d.nanos
