"""Retry policies: Go Cadence's validation messages and its retry decisions at their boundaries."""

from __future__ import annotations

import datetime as dt

import pytest
from cadence.api.v1 import common_pb2, workflow_pb2

from cadence_fast.errors import BadRequestError
from cadence_fast.history import retry
from cadence_fast.history.retry import RetryPolicy, next_retry_delay

S = retry.NS
NOW = 1_795_634_670 * S


def proto(**fields: object) -> common_pb2.RetryPolicy:
    """A RetryPolicy proto; durations given as seconds (float) like the client's timedeltas."""
    rp = common_pb2.RetryPolicy()
    for name, value in fields.items():
        if name.endswith("_interval"):
            getattr(rp, name).FromTimedelta(dt.timedelta(seconds=value))  # type: ignore[arg-type]
        elif name == "non_retryable_error_reasons":
            rp.non_retryable_error_reasons.extend(value)  # type: ignore[call-overload]
        else:
            setattr(rp, name, value)
    return rp


# --- validation ---------------------------------------------------------------------------

VALID = [
    proto(initial_interval=1, backoff_coefficient=2.0, maximum_interval=10, maximum_attempts=3),
    proto(initial_interval=1, expiration_interval=60),
    proto(maximum_attempts=5),  # the Python client leaves initial interval and coefficient unset
    proto(initial_interval=5, maximum_interval=5, maximum_attempts=2),  # maximum == initial
    proto(initial_interval=1, backoff_coefficient=1.0, maximum_attempts=2),
    proto(initial_interval=1, maximum_attempts=1, non_retryable_error_reasons=["bad"]),
]


@pytest.mark.parametrize("policy", VALID)
def test_valid_policies(policy: common_pb2.RetryPolicy) -> None:
    retry.validate_retry_policy(policy)


def test_no_policy_is_valid() -> None:
    retry.validate_retry_policy(None)


INVALID = [
    (proto(initial_interval=-1, maximum_attempts=2), "InitialIntervalInSeconds must be greater than 0"),
    (proto(backoff_coefficient=0.5, maximum_attempts=2), "BackoffCoefficient cannot be less than 1"),
    (proto(backoff_coefficient=-2.0, maximum_attempts=2), "BackoffCoefficient cannot be less than 1"),
    (
        proto(backoff_coefficient=float("nan"), maximum_attempts=2),
        "BackoffCoefficient must be a finite number",
    ),
    (
        proto(backoff_coefficient=float("inf"), maximum_attempts=2),
        "BackoffCoefficient must be a finite number",
    ),
    (proto(maximum_interval=-1, maximum_attempts=2), "MaximumIntervalInSeconds cannot be less than 0"),
    (
        proto(initial_interval=10, maximum_interval=5, maximum_attempts=2),
        "MaximumIntervalInSeconds cannot be less than InitialIntervalInSeconds",
    ),
    (proto(maximum_attempts=-1), "MaximumAttempts cannot be less than 0"),
    (proto(maximum_attempts=2, expiration_interval=-1), "ExpirationIntervalInSeconds cannot be less than 0"),
    (proto(initial_interval=1), "MaximumAttempts and ExpirationIntervalInSeconds are both 0"),
]


@pytest.mark.parametrize(("policy", "message"), INVALID)
def test_invalid_policies_name_the_field(policy: common_pb2.RetryPolicy, message: str) -> None:
    with pytest.raises(BadRequestError) as info:
        retry.validate_retry_policy(policy)
    assert message in info.value.message
    assert info.value.message.endswith(".")


def test_unbounded_policy_allowed_only_when_asked() -> None:
    retry.validate_retry_policy(proto(initial_interval=1), require_limit=False)


# --- conversion ---------------------------------------------------------------------------


def test_from_proto_applies_the_defaults() -> None:
    assert RetryPolicy.from_proto(proto(maximum_attempts=3)) == RetryPolicy(
        initial_interval=S, backoff_coefficient=2.0, maximum_attempts=3
    )
    rp = proto(
        initial_interval=0.5,
        backoff_coefficient=1.5,
        maximum_interval=30,
        maximum_attempts=4,
        expiration_interval=90,
        non_retryable_error_reasons=["a", "b"],
    )
    expected = RetryPolicy(S // 2, 1.5, 30 * S, 4, 90 * S, frozenset({"a", "b"}))
    assert RetryPolicy.from_proto(rp) == expected
    assert RetryPolicy.from_bytes(rp.SerializeToString()) == expected
    # every accepted form gives the same decision
    for form in (rp, rp.SerializeToString(), expected):
        assert next_retry_delay(form, 1, "x", now=NOW, expiration_time=NOW + 90 * S) == 3 * S // 4


# --- retry decisions ----------------------------------------------------------------------

DECISIONS = [
    # (policy, failed attempt, reason, expiration time, expected delay or None)
    # backoff = initial * coefficient ** attempt
    (RetryPolicy(maximum_attempts=10), 0, "err", 0, S),
    (RetryPolicy(maximum_attempts=10), 1, "err", 0, 2 * S),
    (RetryPolicy(maximum_attempts=10), 3, "err", 0, 8 * S),
    (RetryPolicy(initial_interval=3 * S, backoff_coefficient=1.0, maximum_attempts=10), 5, "err", 0, 3 * S),
    (RetryPolicy(initial_interval=S, backoff_coefficient=1.5, maximum_attempts=10), 2, "err", 0, 9 * S // 4),
    # capped at maximum_interval
    (RetryPolicy(maximum_interval=5 * S, maximum_attempts=10), 2, "err", 0, 4 * S),
    (RetryPolicy(maximum_interval=5 * S, maximum_attempts=10), 3, "err", 0, 5 * S),
    # maximum_attempts counts the first attempt: 3 attempts = retries after attempts 0 and 1 only
    (RetryPolicy(maximum_attempts=3), 1, "err", 0, 2 * S),
    (RetryPolicy(maximum_attempts=3), 2, "err", 0, None),
    (RetryPolicy(maximum_attempts=1), 0, "err", 0, None),
    # unlimited attempts need an expiration time, which bounds them
    (RetryPolicy(maximum_attempts=0), 0, "err", 0, None),
    (RetryPolicy(maximum_attempts=0), 40, "err", NOW + 60 * S, None),
    (RetryPolicy(maximum_attempts=0, maximum_interval=10 * S), 40, "err", NOW + 60 * S, 10 * S),
    # expiration: landing exactly on it still retries; a nanosecond later does not
    (RetryPolicy(maximum_attempts=10), 2, "err", NOW + 4 * S, 4 * S),
    (RetryPolicy(maximum_attempts=10), 2, "err", NOW + 4 * S - 1, None),
    (RetryPolicy(maximum_attempts=10), 0, "err", NOW - 1, None),
    # non-retryable reasons: exact match only
    (RetryPolicy(maximum_attempts=10, non_retryable_error_reasons=frozenset({"bad"})), 0, "bad", 0, None),
    (RetryPolicy(maximum_attempts=10, non_retryable_error_reasons=frozenset({"bad"})), 0, "bad!", 0, S),
    (RetryPolicy(maximum_attempts=10, non_retryable_error_reasons=frozenset({"bad"})), 0, "", 0, S),
    # the server's own size-limit reasons never retry; FAILURE_DETAILS_EXCEEDS_LIMIT does
    (RetryPolicy(maximum_attempts=10), 0, "COMPLETE_RESULT_EXCEEDS_LIMIT", 0, None),
    (RetryPolicy(maximum_attempts=10), 0, "HEARTBEAT_EXCEEDS_LIMIT", 0, None),
    (RetryPolicy(maximum_attempts=10), 0, "CANCEL_DETAILS_EXCEEDS_LIMIT", 0, None),
    (RetryPolicy(maximum_attempts=10), 0, "DECISION_BLOB_SIZE_EXCEEDS_LIMIT", 0, None),
    (RetryPolicy(maximum_attempts=10), 0, "FAILURE_DETAILS_EXCEEDS_LIMIT", 0, S),
    # timeouts retry under their internal reason and can be listed as non-retryable
    (
        RetryPolicy(
            maximum_attempts=10,
            non_retryable_error_reasons=frozenset({"cadenceInternal:Timeout HEARTBEAT"}),
        ),
        0,
        retry.timeout_reason(workflow_pb2.TIMEOUT_TYPE_HEARTBEAT),
        0,
        None,
    ),
    # an overflowing backoff becomes the maximum interval, or ends the retries without one
    (RetryPolicy(maximum_attempts=0, maximum_interval=60 * S), 5000, "err", NOW + 3600 * S, 60 * S),
    (RetryPolicy(maximum_attempts=0), 5000, "err", NOW + 3600 * S, None),
    (
        RetryPolicy(backoff_coefficient=1e300, maximum_interval=60 * S, maximum_attempts=0),
        2,
        "e",
        NOW + S * 99,
        60 * S,
    ),
]


@pytest.mark.parametrize(("policy", "attempt", "reason", "expiration", "expected"), DECISIONS)
def test_next_retry_delay(
    policy: RetryPolicy, attempt: int, reason: str, expiration: int, expected: int | None
) -> None:
    assert next_retry_delay(policy, attempt, reason, now=NOW, expiration_time=expiration) == expected


def test_expiration_times() -> None:
    scheduled = NOW
    with_interval = RetryPolicy(expiration_interval=60 * S)
    assert retry.activity_expiration_time(with_interval, scheduled, 0) == scheduled + 60 * S
    assert retry.activity_expiration_time(with_interval, scheduled, 30 * S) == scheduled + 30 * S
    assert retry.activity_expiration_time(with_interval, scheduled, 90 * S) == scheduled + 60 * S
    assert retry.activity_expiration_time(RetryPolicy(), scheduled, 30 * S) == scheduled + 30 * S
    assert retry.activity_expiration_time(RetryPolicy(), scheduled, 0) == 0
    assert retry.workflow_expiration_time(with_interval, NOW) == NOW + 60 * S
    assert retry.workflow_expiration_time(proto(maximum_attempts=3), NOW) == 0


def test_timeout_reasons() -> None:
    assert (
        retry.timeout_reason(workflow_pb2.TIMEOUT_TYPE_START_TO_CLOSE)
        == "cadenceInternal:Timeout START_TO_CLOSE"
    )
    assert retry.timeout_reason(workflow_pb2.TIMEOUT_TYPE_SCHEDULE_TO_START) == (
        "cadenceInternal:Timeout SCHEDULE_TO_START"
    )
