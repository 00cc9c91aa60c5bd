"""Cron schedules as Cadence accepts them (robfig/cron): five fields or a descriptor.

    minute hour day-of-month month day-of-week      e.g. "*/15 9-17 * * MON-FRI"
    @yearly @annually @monthly @weekly @daily @midnight @hourly @every <duration>

Times are UTC. When both day-of-month and day-of-week are restricted, a day matching
either one fires (the classic cron rule robfig follows).
"""

from __future__ import annotations

import datetime as dt
import re

_DESCRIPTORS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
_MONTHS = {m: i for i, m in enumerate("JAN FEB MAR APR MAY JUN JUL AUG SEP OCT NOV DEC".split(), 1)}
_DAYS = {d: i for i, d in enumerate("SUN MON TUE WED THU FRI SAT".split())}
_RANGES = ((0, 59, {}), (0, 23, {}), (1, 31, {}), (1, 12, _MONTHS), (0, 6, _DAYS))
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_UNIT_NS = {
    "ns": 1,
    "us": 1_000,
    "µs": 1_000,
    "ms": 1_000_000,
    "s": 10**9,
    "m": 60 * 10**9,
    "h": 3600 * 10**9,
}


class CronError(ValueError):
    pass


class Schedule:
    def __init__(self, spec: str) -> None:
        self.spec = spec
        self.every_ns = 0
        text = spec.strip()
        if text.startswith("@every"):
            self.every_ns = _parse_duration(text[len("@every") :].strip())
            return
        text = _DESCRIPTORS.get(text, text)
        fields = text.split()
        if len(fields) == 6:  # robfig's optional seconds field: accepted, ignored below a minute
            fields = fields[1:]
        if len(fields) != 5:
            raise CronError(f"invalid cron schedule {spec!r}: want 5 fields or a descriptor")
        self.sets: list[set[int]] = []
        self.star: list[bool] = []
        for text_field, (lo, hi, names) in zip(fields, _RANGES, strict=True):
            values = _parse_field(text_field, lo, hi, names, spec)
            if hi == 6 and 7 in values:
                values.discard(7)
                values.add(0)
            self.sets.append(values)
            self.star.append(text_field.startswith("*"))

    def next_after(self, t: dt.datetime) -> dt.datetime:
        """The first firing time strictly after t."""
        if self.every_ns:
            return t + dt.timedelta(microseconds=self.every_ns // 1000)
        minutes, hours, doms, months, dows = self.sets
        start = (t + dt.timedelta(minutes=1)).replace(second=0, microsecond=0)
        day = start.replace(hour=0, minute=0)
        for _ in range(366 * 5):
            if day.month in months and self._day_matches(day, doms, dows):
                for h in sorted(hours):
                    for m in sorted(minutes):
                        candidate = day.replace(hour=h, minute=m)
                        if candidate >= start:
                            return candidate
            day += dt.timedelta(days=1)
        raise CronError(f"cron schedule {self.spec!r} never fires")

    def _day_matches(self, day: dt.datetime, doms: set[int], dows: set[int]) -> bool:
        dom_ok = day.day in doms
        dow_ok = (day.isoweekday() % 7) in dows
        if self.star[2] or self.star[4]:
            return dom_ok and dow_ok
        return dom_ok or dow_ok


def _parse_field(text: str, lo: int, hi: int, names: dict[str, int], spec: str) -> set[int]:
    out: set[int] = set()
    top = 7 if hi == 6 else hi
    for part in text.split(","):
        step = 1
        if "/" in part:
            part, step_text = part.split("/", 1)
            step = _number(step_text, names, spec)
            if step <= 0:
                raise CronError(f"invalid cron schedule {spec!r}: step must be positive")
        if part in ("*", "?"):
            a, b = lo, hi
        elif "-" in part:
            a_text, b_text = part.split("-", 1)
            a, b = _number(a_text, names, spec), _number(b_text, names, spec)
        else:
            a = _number(part, names, spec)
            b = hi if step > 1 else a
        if not (lo <= a <= top and lo <= b <= top and a <= b):
            raise CronError(f"invalid cron schedule {spec!r}: {part!r} is out of range {lo}-{hi}")
        out.update(range(a, b + 1, step))
    return out


def _number(text: str, names: dict[str, int], spec: str) -> int:
    key = text.upper()
    if key in names:
        return names[key]
    if not text.isdigit():
        raise CronError(f"invalid cron schedule {spec!r}: {text!r} is not a number")
    return int(text)


def _parse_duration(text: str) -> int:
    total = 0
    pos = 0
    for m in _DURATION.finditer(text):
        if m.start() != pos:
            break
        total += int(float(m.group(1)) * _UNIT_NS[m.group(2)])
        pos = m.end()
    if pos != len(text) or total <= 0:
        raise CronError(f"invalid @every duration {text!r}")
    return total


def validate(spec: str) -> None:
    Schedule(spec)


def backoff_ns(spec: str, now_ns: int) -> int:
    """Nanoseconds from now until the schedule's next firing."""
    now = dt.datetime.fromtimestamp(now_ns / 1e9, tz=dt.UTC)
    nxt = Schedule(spec).next_after(now)
    return max(0, int(nxt.timestamp() * 1e9) - now_ns)
