"""Cron schedules: every form robfig/cron v3's standard parser accepts, its errors, its
next-time walk (UTC, a fixed-offset zone and DST), and Cadence's next-run backoff."""

from __future__ import annotations

import datetime as dt
import random
from zoneinfo import ZoneInfo

import pytest
from cadence.api.v1 import workflow_pb2

from cadence_fast.history import cron

NS = cron.NS
UTC = dt.UTC
NEW_YORK = ZoneInfo("America/New_York")
# Wednesday 2026-11-25 19:24:30.250 UTC, off every whole minute and second on purpose.
AT = dt.datetime(2026, 11, 25, 19, 24, 30, 250_000, tzinfo=UTC)


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> dt.datetime:
    return dt.datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def ns(t: dt.datetime) -> int:
    delta = t - dt.datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * NS + delta.microseconds * 1_000


NEXT_CASES = [
    # (expression, after, expected next firing)
    ("* * * * *", AT, utc(2026, 11, 25, 19, 25)),
    ("*/15 * * * *", AT, utc(2026, 11, 25, 19, 30)),
    ("5/15 * * * *", AT, utc(2026, 11, 25, 19, 35)),  # n/step = n-59/step
    ("10-40/10 * * * *", AT, utc(2026, 11, 25, 19, 30)),
    ("1,2,59 * * * *", AT, utc(2026, 11, 25, 19, 59)),
    ("0 9-17 * * *", AT, utc(2026, 11, 26, 9)),
    ("30 20,22 * * *", AT, utc(2026, 11, 25, 20, 30)),
    ("*/15 9-17 * * MON-FRI", AT, utc(2026, 11, 26, 9)),
    ("0 0 * * sat,SUN", AT, utc(2026, 11, 28)),  # names are case-insensitive
    ("0 0 * JAN,jul *", AT, utc(2027, 1, 1)),
    ("0 0 1 */3 *", AT, utc(2027, 1, 1)),  # months 1,4,7,10
    ("0 0 ? * 1", AT, utc(2026, 11, 30)),  # ? is a star
    ("0 0 1,15 * *", AT, utc(2026, 12, 1)),
    ("0 12 13 * 5", AT, utc(2026, 11, 27, 12)),  # dom OR dow: Friday the 27th
    ("0 12 13 * 5", utc(2026, 11, 28), utc(2026, 12, 4, 12)),
    ("0 0 13 * */1", AT, utc(2026, 12, 13)),  # */1 is still a star: dom AND dow
    ("0 0 13 * */2", AT, utc(2026, 11, 26)),  # */2 is not: Thursday (4) matches the OR
    ("0 0 31 * *", AT, utc(2026, 12, 31)),
    ("0 0 29 2 *", AT, utc(2028, 2, 29)),
    ("59 23 31 12 *", AT, utc(2026, 12, 31, 23, 59)),
    ("0 0 1 1 *", utc(2026, 12, 31, 23, 59, 59), utc(2027, 1, 1)),
    ("@yearly", AT, utc(2027, 1, 1)),
    ("@annually", AT, utc(2027, 1, 1)),
    ("@monthly", AT, utc(2026, 12, 1)),
    ("@weekly", AT, utc(2026, 11, 29)),  # Sunday
    ("@daily", AT, utc(2026, 11, 26)),
    ("@midnight", AT, utc(2026, 11, 26)),
    ("@hourly", AT, utc(2026, 11, 25, 20)),
    ("  */5   *  * * *  ", AT, utc(2026, 11, 25, 19, 25)),  # fields split on any whitespace
    # strictly after: a time on a tick gets the following tick
    ("*/5 * * * *", utc(2026, 11, 25, 19, 25), utc(2026, 11, 25, 19, 30)),
    ("@hourly", utc(2026, 11, 25, 20), utc(2026, 11, 25, 21)),
    # @every: whole seconds (at least 1), from the previous time rounded down to the second
    ("@every 10s", AT, utc(2026, 11, 25, 19, 24, 40)),
    ("@every 1h30m", AT, utc(2026, 11, 25, 20, 54, 30)),
    ("@every 1.5s", AT, utc(2026, 11, 25, 19, 24, 31)),
    ("@every 100ms", AT, utc(2026, 11, 25, 19, 24, 31)),
    ("@every 2m0.9s", AT, utc(2026, 11, 25, 19, 26, 30)),
    ("@every 0", AT, utc(2026, 11, 25, 19, 24, 31)),
    ("@every -1h", AT, utc(2026, 11, 25, 19, 24, 31)),
    # time zones: fields are wall-clock times there
    ("CRON_TZ=Asia/Tokyo 0 9 * * *", AT, utc(2026, 11, 26, 0)),  # 09:00 JST
    ("TZ=Asia/Kolkata 30 0 * * *", AT, utc(2026, 11, 26, 19)),  # 00:30 IST, a half-hour offset
    ("CRON_TZ=Asia/Tokyo @daily", AT, utc(2026, 11, 26, 15)),
    ("CRON_TZ=UTC 0 0 * * *", AT, utc(2026, 11, 26)),
    ("TZ=Asia/Tokyo @every 10s", AT, utc(2026, 11, 25, 19, 24, 40)),
]


@pytest.mark.parametrize(("expr", "after", "expected"), NEXT_CASES)
def test_next_after(expr: str, after: dt.datetime, expected: dt.datetime) -> None:
    schedule = cron.parse_cron(expr)
    assert schedule.next_after(after) == expected
    # the engine's form: int nanoseconds in, int nanoseconds out
    assert schedule.next_after(ns(after)) == ns(expected)


def test_next_after_keeps_the_callers_zone_and_naive_means_utc() -> None:
    schedule = cron.parse_cron("0 9 * * *")
    got = schedule.next_after(AT.astimezone(NEW_YORK))
    assert got is not None and got.tzinfo is NEW_YORK and got == utc(2026, 11, 26, 9)
    assert schedule.next_after(AT.replace(tzinfo=None)) == dt.datetime(2026, 11, 26, 9)


def test_daylight_saving_time_as_robfig() -> None:
    # robfig's own cases, in five fields: a wall time skipped by spring-forward does not
    # fire that year; one repeated by fall-back fires on both passes.
    spring = cron.parse_cron("TZ=America/New_York 30 2 11 Mar ?")
    assert spring.next_after(dt.datetime(2012, 3, 11, tzinfo=NEW_YORK)) == dt.datetime(
        2013, 3, 11, 2, 30, tzinfo=NEW_YORK
    )
    fall = cron.parse_cron("TZ=America/New_York 0 1 4 Nov ?")
    # (ints: Python never equates a datetime in a repeated hour with one in another zone)
    first = fall.next_after(ns(utc(2012, 11, 4, 4)))  # midnight EDT
    assert first == ns(utc(2012, 11, 4, 5))  # 01:00 EDT
    second = fall.next_after(first)
    assert second == ns(utc(2012, 11, 4, 6))  # 01:00 EST, an hour later
    assert fall.next_after(second) == ns(utc(2013, 11, 4, 6))


def test_hourly_ticks_across_daylight_saving_changes() -> None:
    schedule = cron.parse_cron("CRON_TZ=America/New_York 30 * * * *")

    def ticks(start: dt.datetime, n: int) -> list[str]:
        out, t = [], ns(start)
        for _ in range(n):
            t = schedule.next_after(t)  # type: ignore[assignment]
            local = dt.datetime.fromtimestamp(t / NS, NEW_YORK)
            out.append(f"{local:%H:%M}{local.tzname()}")
        return out

    # spring forward (2:00 EST -> 3:00 EDT): no 02:30
    assert ticks(utc(2012, 3, 11, 5), 3) == ["00:30EST", "01:30EST", "03:30EDT"]
    # fall back (2:00 EDT -> 1:00 EST): 01:30 twice
    assert ticks(utc(2012, 11, 4, 4), 4) == ["00:30EDT", "01:30EDT", "01:30EST", "02:30EST"]


def test_descriptors_equal_their_five_field_forms() -> None:
    start = ns(AT)
    for descriptor, fields in [
        ("@yearly", "0 0 1 1 *"),
        ("@monthly", "0 0 1 * *"),
        ("@weekly", "0 0 * * 0"),
        ("@daily", "0 0 * * *"),
        ("@hourly", "0 * * * *"),
    ]:
        a, b = cron.parse_cron(descriptor), cron.parse_cron(fields)
        t, u = start, start
        for _ in range(5):
            t, u = a.next_after(t), b.next_after(u)  # type: ignore[assignment]
            assert t == u, descriptor


def _oracle(expr: str, after: dt.datetime) -> dt.datetime:
    """Classic cron by brute force (UTC): scan days, then hours and minutes."""
    minute, hour, dom, month, dow = expr.split()

    def values(field: str, lo: int, hi: int) -> set[int]:
        out: set[int] = set()
        for part in field.split(","):
            rng, _, step = part.partition("/")
            a, b = (lo, hi) if rng == "*" else map(int, (rng.split("-") * 2)[:2])
            if step and "-" not in rng and rng != "*":
                b = hi
            out.update(range(a, b + 1, int(step or 1)))
        return out

    mins, hours, doms, months, dows = (
        values(minute, 0, 59),
        values(hour, 0, 23),
        values(dom, 1, 31),
        values(month, 1, 12),
        values(dow, 0, 6),
    )
    both = dom not in ("*", "*/1") and dow not in ("*", "*/1")
    day = after.replace(hour=0, minute=0, second=0, microsecond=0)
    while True:
        dom_ok, dow_ok = day.day in doms, day.isoweekday() % 7 in dows
        if day.month in months and ((dom_ok or dow_ok) if both else (dom_ok and dow_ok)):
            for h in sorted(hours):
                for m in sorted(mins):
                    candidate = day.replace(hour=h, minute=m)
                    if candidate > after:
                        return candidate
        day += dt.timedelta(days=1)


def test_next_after_agrees_with_a_brute_force_search() -> None:
    rng = random.Random(20261125)

    def field(lo: int, hi: int) -> str:
        kind = rng.randrange(5)
        a = rng.randint(lo, hi)
        b = rng.randint(a, hi)
        return ["*", str(a), f"{a}-{b}", f"*/{rng.randint(1, 4)}", f"{a},{b}"][kind]

    for _ in range(150):
        # days of month <= 28 keep every (month, day) pair possible
        expr = " ".join([field(0, 59), field(0, 23), field(1, 28), field(1, 12), field(0, 6)])
        after = utc(2026, 1, 1) + dt.timedelta(seconds=rng.randrange(366 * 86_400))
        assert cron.parse_cron(expr).next_after(after) == _oracle(expr, after), expr


BAD_CASES = [
    # (expression, words the error must contain)
    ("", "empty"),
    ("* * *", "expected exactly 5 fields"),
    ("* * * * * *", "found 6"),  # no seconds field in Cadence's (standard) parser
    ("60 * * * *", "minute field '60': end of range (60) above maximum (59)"),
    ("* 24 * * *", "hour field '24'"),
    ("* * 0 * *", "day-of-month field '0': beginning of range (0) below minimum (1)"),
    ("* * 32 * *", "day-of-month field '32'"),
    ("* * * 13 *", "month field '13'"),
    ("* * * * 7", "day-of-week field '7': end of range (7) above maximum (6)"),
    ("* * * * MOON", "day-of-week field 'MOON'"),
    ("* * * MON *", "month field 'MON'"),  # day names only in day-of-week
    ("* * * * JAN", "day-of-week field 'JAN'"),
    ("5-1 * * * *", "beginning of range (5) beyond end of range (1)"),
    ("1-2-3 * * * *", "too many hyphens"),
    ("*/2/3 * * * *", "too many slashes"),
    ("*/0 * * * *", "step of range should be a positive number"),
    ("*/x * * * *", "'x' is not a number"),
    ("*/-1 * * * *", "negative number (-1) not allowed"),
    ("1,,2 * * * *", "minute field ''"),
    ("a * * * *", "minute field 'a'"),
    ("0 0 30 2 *", "never fires"),
    ("0 0 31 4,6,9,11 *", "never fires"),
    ("@every", "unrecognized descriptor '@every'"),
    ("@fortnightly", "unrecognized descriptor"),
    ("@daily ", "unrecognized descriptor"),
    ("@every ", "@every duration ''"),
    ("@every 1x", "unknown unit 'x'"),
    ("@every 10", "missing unit"),
    ("@every h", "invalid duration"),
    ("@every 1h 30m", "unknown unit 'h '"),
    ("@every 9999999999h", "overflows"),
    ("CRON_TZ=Mars/Olympus 0 0 * * *", "bad location 'Mars/Olympus'"),
    ("TZ=Asia/Tokyo", "not followed by a schedule"),
]


@pytest.mark.parametrize(("expr", "message"), BAD_CASES)
def test_bad_expressions_name_the_problem(expr: str, message: str) -> None:
    with pytest.raises(cron.CronError) as info:
        cron.parse_cron(expr)
    assert message in str(info.value)
    assert isinstance(info.value, ValueError)  # callers may catch ValueError


@pytest.mark.parametrize(
    ("text", "nanoseconds"),
    [
        ("0", 0),
        ("10s", 10 * NS),
        ("1h30m", 5_400 * NS),
        ("1.5h", 5_400 * NS),
        (".5s", NS // 2),
        ("1.s", NS),
        ("+2m", 120 * NS),
        ("-2m", -120 * NS),
        ("300ms", 300_000_000),
        ("2us", 2_000),
        ("2µs", 2_000),
        ("2μs", 2_000),
        ("7ns", 7),
        ("1h1m1s1ms", 3_661_001_000_000),
    ],
)
def test_go_durations(text: str, nanoseconds: int) -> None:
    assert cron.parse_go_duration(text) == nanoseconds


def test_overlap_constants_match_the_proto() -> None:
    assert cron.OVERLAP_INVALID == workflow_pb2.CRON_OVERLAP_POLICY_INVALID
    assert cron.OVERLAP_SKIPPED == workflow_pb2.CRON_OVERLAP_POLICY_SKIPPED
    assert cron.OVERLAP_BUFFER_ONE == workflow_pb2.CRON_OVERLAP_POLICY_BUFFER_ONE


S = NS  # one second


BACKOFF_CASES = [
    # (schedule, start, close, overlap policy, expected backoff in ns)
    # first run of a new cron workflow: start == close == the request time; rounded up to seconds
    (
        "*/5 * * * *",
        ns(AT),
        ns(AT),
        cron.OVERLAP_SKIPPED,
        30 * S,  # 29.75 s rounded up
    ),
    ("@hourly", ns(utc(2026, 11, 25, 19)), ns(utc(2026, 11, 25, 19)), cron.OVERLAP_SKIPPED, 3600 * S),
    # the run closed before its next tick: wait for that tick
    (
        "*/5 * * * *",
        ns(utc(2026, 11, 25, 19, 25)),
        ns(utc(2026, 11, 25, 19, 27)),
        cron.OVERLAP_SKIPPED,
        180 * S,
    ),
    # closed exactly on the tick: start now (Go's loop stops at a tick not before close)
    ("*/5 * * * *", ns(utc(2026, 11, 25, 19, 25)), ns(utc(2026, 11, 25, 19, 30)), cron.OVERLAP_SKIPPED, 0),
    # it overran ticks: skip them, anchored on the schedule (not on the close time)
    (
        "*/5 * * * *",
        ns(utc(2026, 11, 25, 19, 25)),
        ns(utc(2026, 11, 25, 19, 41, 10)),
        cron.OVERLAP_SKIPPED,
        230 * S,
    ),
    (
        "*/5 * * * *",
        ns(utc(2026, 11, 25, 19, 25)),
        ns(utc(2026, 11, 25, 19, 41, 10)),
        cron.OVERLAP_INVALID,
        230 * S,
    ),
    # BUFFER_ONE: a missed tick runs at once
    (
        "*/5 * * * *",
        ns(utc(2026, 11, 25, 19, 25)),
        ns(utc(2026, 11, 25, 19, 41, 10)),
        cron.OVERLAP_BUFFER_ONE,
        0,
    ),
    (
        "*/5 * * * *",
        ns(utc(2026, 11, 25, 19, 25)),
        ns(utc(2026, 11, 25, 19, 27)),
        cron.OVERLAP_BUFFER_ONE,
        180 * S,
    ),
    # a year-long run of a minutely schedule: the next minute, found without walking the year
    ("* * * * *", ns(utc(2025, 11, 25)), ns(utc(2026, 11, 25, 19, 24, 30)), cron.OVERLAP_SKIPPED, 30 * S),
    # @every ticks stay on start + k*delay
    ("@every 10s", ns(utc(2026, 1, 1)), ns(utc(2026, 1, 1, 0, 0, 3)), cron.OVERLAP_SKIPPED, 7 * S),
    ("@every 10s", ns(utc(2026, 1, 1)), ns(utc(2026, 1, 1, 0, 0, 25)), cron.OVERLAP_SKIPPED, 5 * S),
    ("@every 10s", ns(utc(2026, 1, 1)), ns(utc(2026, 1, 1, 0, 0, 30)), cron.OVERLAP_SKIPPED, 0),
    ("@every 10s", ns(utc(2026, 1, 1)), ns(utc(2026, 1, 1, 0, 0, 25)), cron.OVERLAP_BUFFER_ONE, 0),
    ("@every 10s", ns(utc(2026, 1, 1)), ns(utc(2026, 1, 1, 1)) + 1, cron.OVERLAP_SKIPPED, 10 * S),
    # zone: 09:00 Tokyo is 00:00 UTC
    ("CRON_TZ=Asia/Tokyo 0 9 * * *", ns(AT), ns(utc(2026, 11, 25, 23)), cron.OVERLAP_SKIPPED, 3600 * S),
]


@pytest.mark.parametrize(("expr", "start", "close", "overlap", "expected"), BACKOFF_CASES)
def test_backoff_for_cron(expr: str, start: int, close: int, overlap: int, expected: int) -> None:
    assert cron.backoff_for_cron(expr, start, close, overlap_policy=overlap) == expected
    assert cron.backoff_for_cron(cron.parse_cron(expr), start, close, overlap_policy=overlap) == expected


def test_backoff_rounds_up_to_whole_seconds() -> None:
    close = ns(utc(2026, 11, 25, 19, 24, 59)) + 1  # 1 ns past :59 → 0.999999999 s to go
    assert cron.backoff_for_cron("* * * * *", close, close) == S


def test_backoff_jitter_is_whole_seconds_within_bounds() -> None:
    start = ns(utc(2026, 11, 25, 19, 25))
    close = ns(utc(2026, 11, 25, 19, 27))
    rng = random.Random(7)
    seen = {
        cron.backoff_for_cron("*/5 * * * *", start, close, jitter_start=5 * S + 123, rng=rng)
        for _ in range(200)
    }
    assert seen == {(180 + k) * S for k in range(6)}  # [0, 5] s added, both ends reachable
    assert cron.backoff_for_cron("*/5 * * * *", start, close, jitter_start=S - 1) == 180 * S  # < 1 s: none


def test_backoff_ns_is_anchored_at_now_unless_given_a_start() -> None:
    now = ns(utc(2026, 11, 25, 19, 41, 10))
    assert cron.backoff_ns("*/5 * * * *", now) == 230 * S
    assert cron.backoff_ns("*/5 * * * *", now, start_ns=ns(utc(2026, 11, 25, 19, 25))) == 230 * S
    with pytest.raises(cron.CronError):
        cron.backoff_ns("bad", now)


def test_no_tick_within_robfigs_horizon() -> None:
    # 2100 is not a leap year: from March 2096 the next Feb 29 is in 2104, past 5 years.
    after = ns(utc(2096, 3, 1))
    schedule = cron.parse_cron("0 0 29 2 *")
    assert schedule.next_after(after) is None
    assert cron.backoff_for_cron(schedule, after, after) is None
