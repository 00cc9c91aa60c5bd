"""Cron schedules exactly as Go Cadence accepts them: robfig/cron v3's standard parser.

    [CRON_TZ=Zone | TZ=Zone] minute hour day-of-month month day-of-week
        fields: *  ?  lists (1,5)  ranges (1-5)  steps (*/5, 1-10/2, 5/15 = 5-max/15)
        names: JAN-DEC in month, SUN-SAT in day-of-week (case-insensitive); dow is 0-6
    [CRON_TZ=Zone] @yearly @annually @monthly @weekly @daily @midnight @hourly
    [CRON_TZ=Zone] @every <Go duration>          e.g. @every 1h30m, @every 10s

Times are int nanoseconds since the Unix epoch, UTC, like every time in the engine
(`mutable_state.NS`); `CronSchedule.next_after` also takes an aware datetime for readability.
Without a zone prefix a schedule runs in UTC (Go Cadence hands robfig UTC times, so its
"local" zone is UTC too).

Semantics copied from robfig v3 on purpose, because a schedule must fire at the same
instants here as on a Go Cadence cluster:
- when day-of-month and day-of-week are both restricted a day matching EITHER fires; if
  either one is `*` or `?` (a "star" field, which `*/1` still is but `*/2` is not) both must match;
- `?` is accepted in any field, as robfig does, meaning `*`;
- `@every d` rounds d down to whole seconds (at least 1 s) and ticks at
  (previous tick rounded down to the second) + d;
- `next_after` walks month, day, hour, minute like robfig's SpecSchedule.Next, with DST
  handled the same way (a wall time skipped by a spring-forward does not fire that day;
  one repeated by a fall-back fires twice).
One deliberate difference: a day-of-month that never occurs in the chosen months
("0 0 30 2 *") is rejected at parse time; robfig accepts it and then never fires.
"""

from __future__ import annotations

import bisect
import datetime as dt
import random
import re
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import overload
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

NS = 1_000_000_000
_UTC = dt.UTC
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=_UTC)

# cadence.api.v1 CronOverlapPolicy values (tests check they match the proto enum).
OVERLAP_INVALID = 0  # unset: treated as SKIPPED, Cadence's default
OVERLAP_SKIPPED = 1
OVERLAP_BUFFER_ONE = 2

# robfig's SpecSchedule.Next gives up (returns the zero time) past this many years.
_YEAR_LIMIT = 5


class CronError(ValueError):
    """A cron expression Cadence would refuse; the message names the field or token.

    The frontend reports it as BadRequestError("Invalid CronSchedule. ...")."""


class CronSchedule(ABC):
    """A parsed schedule; `spec` is the original expression."""

    __slots__ = ("spec",)

    def __init__(self, spec: str) -> None:
        self.spec = spec

    @overload
    def next_after(self, t: int) -> int | None: ...
    @overload
    def next_after(self, t: dt.datetime) -> dt.datetime | None: ...

    def next_after(self, t: int | dt.datetime) -> int | dt.datetime | None:
        """The first firing time strictly after t (None if none within robfig's 5-year search).

        An int is nanoseconds since the epoch and gets an int back; an aware datetime
        gets a datetime in its own zone back (a naive one is taken as UTC, returned naive)."""
        if isinstance(t, dt.datetime):
            aware = t if t.tzinfo is not None else t.replace(tzinfo=_UTC)
            nxt = self._next_ns(_datetime_to_ns(aware))
            if nxt is None:
                return None
            out = (_EPOCH + dt.timedelta(microseconds=nxt // 1000)).astimezone(aware.tzinfo)
            return out if t.tzinfo is not None else out.replace(tzinfo=None)
        return self._next_ns(t)

    @abstractmethod
    def _next_ns(self, t_ns: int) -> int | None: ...

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.spec!r})"


class EverySchedule(CronSchedule):
    """`@every d`: robfig's ConstantDelaySchedule."""

    __slots__ = ("delay",)

    def __init__(self, spec: str, duration_ns: int) -> None:
        super().__init__(spec)
        # robfig: at least a second, and whole seconds only.
        duration_ns = max(duration_ns, NS)
        self.delay: int = duration_ns - duration_ns % NS

    def _next_ns(self, t_ns: int) -> int:
        return t_ns - t_ns % NS + self.delay


class SpecSchedule(CronSchedule):
    """Five cron fields in a time zone: robfig's SpecSchedule (its seconds field is always 0)."""

    __slots__ = (
        "location",
        "minutes",
        "hours",
        "days_of_month",
        "months",
        "days_of_week",
        "_either_day",
        "_minute_list",
        "_hour_list",
    )

    def __init__(
        self,
        spec: str,
        location: dt.tzinfo,
        fields: list[tuple[frozenset[int], bool]],
    ) -> None:
        super().__init__(spec)
        self.location = location
        self.minutes, self.hours, self.days_of_month, self.months, self.days_of_week = (v for v, _ in fields)
        dom_star, dow_star = fields[2][1], fields[4][1]
        # Classic cron: two restricted day fields are OR-ed, otherwise AND-ed.
        self._either_day = not (dom_star or dow_star)
        self._minute_list = sorted(self.minutes)
        self._hour_list = sorted(self.hours)

    def day_matches(self, t: dt.datetime) -> bool:
        dom = t.day in self.days_of_month
        dow = t.isoweekday() % 7 in self.days_of_week  # Sunday = 0, as Go's Weekday
        return (dom or dow) if self._either_day else (dom and dow)

    def _next_ns(self, t_ns: int) -> int | None:
        # A port of robfig v3 SpecSchedule.Next. Each `continue` restarts from the month
        # check, which is what robfig's `goto WRAP` and its inner loops amount to: a field
        # that did not change still matches. `added` marks that the lower fields have been
        # zeroed once; after that the walk only moves forward. robfig steps hours and
        # minutes one at a time; this jumps straight to the next listed value (or the top of
        # the next day/hour) and re-checks, which lands on the same instant: an absolute
        # jump across a DST change only falls short of the wall value, never past a match.
        loc = self.location
        t = dt.datetime.fromtimestamp(t_ns // NS + 1, loc)  # the upcoming whole second
        added = False
        year_limit = t.year + _YEAR_LIMIT
        while t.year <= year_limit:
            if t.month not in self.months:
                if not added:
                    added = True
                    t = _wall(loc, t.year, t.month, 1)
                year, month = (t.year + 1, 1) if t.month == 12 else (t.year, t.month + 1)
                t = _wall(loc, year, month, t.day, t.hour, t.minute, t.second)
                continue
            if not self.day_matches(t):
                if not added:
                    added = True
                    t = _wall(loc, t.year, t.month, t.day)
                d = t.date() + dt.timedelta(days=1)
                t = _wall(loc, d.year, d.month, d.day, t.hour, t.minute, t.second)
                # Midnight moved by a DST change: back onto the day's first hour.
                if t.hour != 0:
                    t = _add(t, (24 - t.hour) * 3600 if t.hour > 12 else -t.hour * 3600)
                continue
            if t.hour not in self.hours:
                if not added:
                    added = True
                    t = _wall(loc, t.year, t.month, t.day, t.hour)
                t = _add(t, (_next_in(self._hour_list, t.hour, 24) - t.hour) * 3600)
                continue
            if t.minute not in self.minutes:
                if not added:
                    added = True
                    t = _add(t, -t.second)
                t = _add(t, (_next_in(self._minute_list, t.minute, 60) - t.minute) * 60)
                continue
            if t.second != 0:
                added = True
                t = _add(t, 60 - t.second)
                continue
            return _datetime_to_ns(t)
        return None


def _next_in(values: list[int], current: int, limit: int) -> int:
    """The smallest listed value above `current`, else `limit` (the wrap point)."""
    i = bisect.bisect_right(values, current)
    return values[i] if i < len(values) else limit


# --- parsing ----------------------------------------------------------------------------

_MONTH_NAMES = {m: i for i, m in enumerate("jan feb mar apr may jun jul aug sep oct nov dec".split(), 1)}
_DAY_NAMES = {d: i for i, d in enumerate("sun mon tue wed thu fri sat".split())}
# (name, minimum, maximum, names) in field order, robfig's bounds.
_FIELDS: tuple[tuple[str, int, int, dict[str, int]], ...] = (
    ("minute", 0, 59, {}),
    ("hour", 0, 23, {}),
    ("day-of-month", 1, 31, {}),
    ("month", 1, 12, _MONTH_NAMES),
    ("day-of-week", 0, 6, _DAY_NAMES),
)
_DESCRIPTORS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
_DAYS_IN_MONTH = (0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)  # February in a leap year
_INT = re.compile(r"[+-]?[0-9]+")  # what Go's strconv.Atoi accepts


def parse_cron(expr: str) -> CronSchedule:
    """Parse a Cadence cron schedule; raises CronError naming the bad field or token."""
    if not expr:
        raise CronError("empty cron schedule")
    spec = expr
    location: dt.tzinfo = _UTC
    if spec.startswith(("TZ=", "CRON_TZ=")):
        space = spec.find(" ")
        if space < 0:
            raise CronError(f"time zone prefix {spec!r} is not followed by a schedule")
        location = _load_zone(spec[spec.index("=") + 1 : space])
        spec = spec[space:].strip()
    if spec.startswith("@"):
        if spec.startswith("@every "):
            return EverySchedule(expr, parse_go_duration(spec[len("@every ") :]))
        if spec not in _DESCRIPTORS:
            raise CronError(f"unrecognized descriptor {spec!r}")
        spec = _DESCRIPTORS[spec]
    texts = spec.split()
    if len(texts) != len(_FIELDS):
        raise CronError(
            f"expected exactly 5 fields (minute hour day-of-month month day-of-week), found {len(texts)}"
        )
    fields = [_parse_field(text, *field) for text, field in zip(texts, _FIELDS, strict=True)]
    _check_day_exists(fields)
    return SpecSchedule(expr, location, fields)


def validate(spec: str) -> None:
    """Raise CronError if Cadence would refuse `spec`."""
    parse_cron(spec)


# The name the engine first used for parse_cron.
Schedule = parse_cron


def _parse_field(
    text: str, name: str, lo: int, hi: int, names: dict[str, int]
) -> tuple[frozenset[int], bool]:
    """One field: its set of values and whether it counts as a star for the day rule."""
    values: set[int] = set()
    star = False
    for part in text.split(","):
        part_values, part_star = _parse_range(part, name, lo, hi, names)
        values |= part_values
        star = star or part_star
    return frozenset(values), star


def _parse_range(expr: str, name: str, lo: int, hi: int, names: dict[str, int]) -> tuple[set[int], bool]:
    """robfig's getRange: `*`, `?`, `n`, `a-b`, each with an optional `/step`."""

    def fail(why: str) -> CronError:
        return CronError(f"{name} field {expr!r}: {why}")

    range_and_step = expr.split("/")
    low_and_high = range_and_step[0].split("-")
    star = low_and_high[0] in ("*", "?")
    if star:
        start, end = lo, hi
    else:
        start = _int_or_name(low_and_high[0], names, fail)
        if len(low_and_high) == 1:
            end = start
        elif len(low_and_high) == 2:
            end = _int_or_name(low_and_high[1], names, fail)
        else:
            raise fail("too many hyphens")
    step = 1
    if len(range_and_step) == 2:
        step = _non_negative_int(range_and_step[1], fail)
        if len(low_and_high) == 1:
            end = hi  # "n/step" means "n-max/step"
        if step > 1:
            star = False
    elif len(range_and_step) > 2:
        raise fail("too many slashes")
    if start < lo:
        raise fail(f"beginning of range ({start}) below minimum ({lo})")
    if end > hi:
        raise fail(f"end of range ({end}) above maximum ({hi})")
    if start > end:
        raise fail(f"beginning of range ({start}) beyond end of range ({end})")
    if step == 0:
        raise fail("step of range should be a positive number")
    return set(range(start, end + 1, step)), star


def _int_or_name(text: str, names: dict[str, int], fail: Callable[[str], CronError]) -> int:
    value = names.get(text.lower())
    return value if value is not None else _non_negative_int(text, fail)


def _non_negative_int(text: str, fail: Callable[[str], CronError]) -> int:
    if not _INT.fullmatch(text):
        raise fail(f"{text!r} is not a number" + (" or a name" if text else ""))
    value = int(text)
    if value < 0:
        raise fail(f"negative number ({value}) not allowed")
    return value


def _check_day_exists(fields: list[tuple[frozenset[int], bool]]) -> None:
    (_, _), (_, _), (doms, dom_star), (months, _), (_, dow_star) = fields
    if dom_star or not dow_star:
        return  # every day can match, or day-of-week (OR-ed in) matches some day every week
    if not any(day <= _DAYS_IN_MONTH[month] for month in months for day in doms):
        raise CronError(
            f"day-of-month {sorted(doms)} never occurs in month {sorted(months)}: the schedule never fires"
        )


def _load_zone(name: str) -> dt.tzinfo:
    if name in ("", "UTC", "Local"):  # Go's LoadLocation; our servers' local zone is UTC
        return _UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as e:
        raise CronError(f"provided bad location {name!r}: {e}") from None


_DURATION_UNITS = {
    "ns": 1,
    "us": 1_000,
    "µs": 1_000,  # U+00B5
    "μs": 1_000,  # U+03BC
    "ms": 1_000_000,
    "s": NS,
    "m": 60 * NS,
    "h": 3600 * NS,
}
_DURATION_NUMBER = re.compile(r"([0-9]*)(?:\.([0-9]*))?")
_MAX_DURATION = (1 << 63) - 1


def parse_go_duration(text: str) -> int:
    """Go's time.ParseDuration ("1h30m", "1.5s", "-2m", "0") in nanoseconds."""

    def fail(why: str) -> CronError:
        return CronError(f"@every duration {text!r}: {why}")

    rest = text
    negative = rest[:1] == "-"
    if rest[:1] in ("-", "+"):
        rest = rest[1:]
    if rest == "0":
        return 0
    if not rest:
        raise fail("invalid duration")
    total = 0
    while rest:
        number = _DURATION_NUMBER.match(rest)
        assert number is not None  # the pattern matches the empty string
        whole, fraction = number.group(1), number.group(2) or ""
        if not whole and not fraction:
            raise fail("invalid duration")
        rest = rest[number.end() :]
        i = 0
        while i < len(rest) and rest[i] != "." and not "0" <= rest[i] <= "9":
            i += 1
        unit, rest = rest[:i], rest[i:]
        if not unit:
            raise fail("missing unit")
        if unit not in _DURATION_UNITS:
            raise fail(f"unknown unit {unit!r}")
        scale = _DURATION_UNITS[unit]
        total += int(whole or 0) * scale
        if fraction:
            total += int(fraction) * scale // 10 ** len(fraction)
        if total > _MAX_DURATION:
            raise fail("overflows")
    return -total if negative else total


# --- the engine's use: backoff before the next cron run ---------------------------------


def backoff_for_cron(
    schedule: CronSchedule | str,
    start_time: int,
    close_time: int,
    *,
    jitter_start: int = 0,
    overlap_policy: int = OVERLAP_SKIPPED,
    rng: random.Random | None = None,
) -> int | None:
    """Nanoseconds from `close_time` until the next run of a cron workflow should start
    (the successor's first-decision backoff); None if the schedule never fires again.

    Go Cadence's backoff.GetBackoffForNextSchedule:
    - the schedule is anchored at `start_time`: Cadence passes the closing run's start time
      plus its first_decision_task_backoff (its "execution time"); for the first run of a new
      cron workflow pass the start request's time as both start and close;
    - SKIPPED (default; also for unset/INVALID): the first tick after start_time that is not
      before close_time: ticks missed while the run was open are skipped;
    - BUFFER_ONE: if the first tick after start_time already passed, start at once (backoff 0);
    - the interval is rounded UP to whole seconds, then a uniform random whole number of
      seconds in [0, jitter_start] is added (jitter_start in ns, truncated to seconds; 0 = none).
    """
    sched = parse_cron(schedule) if isinstance(schedule, str) else schedule
    first = sched.next_after(start_time)
    if first is None:
        return None
    if first >= close_time:
        nxt = first
    elif overlap_policy == OVERLAP_BUFFER_ONE:
        nxt = close_time
    elif isinstance(sched, EverySchedule):
        # Ticks are first + k*delay (all whole seconds): jump instead of walking them.
        missed = -((first - close_time) // sched.delay)  # ceil((close - first) / delay)
        nxt = first + missed * sched.delay
    else:
        # Ticks are whole seconds, so the first tick at or after close_time is the first
        # one after the second before ceil(close_time): no need to walk every missed tick.
        ceil_close = -(-close_time // NS) * NS
        found = sched.next_after(ceil_close - NS)
        if found is None:
            return None
        nxt = found
    backoff = -(-(nxt - close_time) // NS) * NS
    jitter_seconds = jitter_start // NS
    if jitter_seconds > 0:
        backoff += (rng or random).randint(0, jitter_seconds) * NS
    return backoff


def backoff_ns(spec: str, now_ns: int, start_ns: int | None = None) -> int:
    """backoff_for_cron for a spec string, anchored at `start_ns` (default: now_ns).

    Raises CronError if the schedule has no tick within robfig's search horizon."""
    backoff = backoff_for_cron(spec, now_ns if start_ns is None else start_ns, now_ns)
    if backoff is None:
        raise CronError(f"cron schedule {spec!r} does not fire within {_YEAR_LIMIT} years")
    return backoff


# --- time helpers: Go's time arithmetic on aware datetimes -----------------------------


def _datetime_to_ns(t: dt.datetime) -> int:
    delta = t - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * NS + delta.microseconds * 1_000


def _wall(
    loc: dt.tzinfo, year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> dt.datetime:
    """Go's time.Date: a wall-clock time in loc; one skipped by DST resolves forward."""
    guess = dt.datetime(year, month, day, hour, minute, second, tzinfo=loc)
    return dt.datetime.fromtimestamp(int(guess.timestamp()), loc)


def _add(t: dt.datetime, seconds: int) -> dt.datetime:
    """Go's t.Add: absolute time, not wall-clock arithmetic (which Python's + would do)."""
    return dt.datetime.fromtimestamp(int(t.timestamp()) + seconds, t.tzinfo)
