"""The visibility queries Cassandra serves, planned from the typed AST (pure, unit-tested).

Cassandra has no ad-hoc query engine: like Cadence's Cassandra visibility store, this
adapter serves the "basic visibility" lists — open or closed runs of a domain, by start
time or close time, optionally by workflow id, workflow type or close status — from
tables clustered by the ordering time:

- ``visibility_by_start``: every run, clustered by (start_time, run_id) DESC;
- ``visibility_by_close``: closed runs, clustered by (close_time, run_id) DESC.

A query is served when it is an AND of:
- ``CloseTime IS [NOT] NULL`` / ``CloseStatus IS [NOT] NULL`` (open or closed runs);
- ``WorkflowID = x``, ``WorkflowType = x``, ``CloseStatus = x`` (filtered within the
  domain's partition: ALLOW FILTERING on a single partition);
- ranges (``>``, ``>=``, ``<``, ``<=``, ``=``, BETWEEN) on the ordering time: StartTime
  when ordered by start time (the default), CloseTime when ordered by close time;
and ordered by StartTime or CloseTime (either direction; ties by run id in the same
direction). For anything else — custom search attributes, OR, IN, != , other
attributes, close-time order over open runs — `plan_query` raises
`UnsupportedVisibilityQuery` (a BadRequestError: INVALID_ARGUMENT) saying what the
tables cannot serve; the store then evaluates the query over a bounded scan of the
domain's runs instead (`visibility_scan.py`) and passes that refusal on only when the
domain is larger than the scan limit.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from typing import Any

from cadence_fast.errors import BadRequestError
from cadence_fast.persistence.errors import StoreError
from cadence_fast.persistence.records import VisibilityRecord
from cadence_fast.persistence.visibility_query import (
    And,
    Between,
    Compare,
    Expr,
    IsNull,
    VisibilityQuery,
)


class UnsupportedVisibilityQuery(BadRequestError, StoreError):
    """A visibility query the Cassandra store cannot serve (INVALID_ARGUMENT to the caller)."""


BY_START = "visibility_by_start"
BY_CLOSE = "visibility_by_close"
_TIME_COLUMN = {BY_START: "start_time", BY_CLOSE: "close_time"}
_EQ_COLUMNS = {"WorkflowID": "workflow_id", "WorkflowType": "workflow_type", "CloseStatus": "close_status"}
_TOKEN_PREFIX = b"cfc1:"
_SUPPORTED = (
    "the Cassandra visibility store serves only open/closed lists filtered by WorkflowID, WorkflowType or "
    "CloseStatus, with a StartTime (or CloseTime) range, ordered by StartTime or CloseTime"
)


def _refuse(what: str) -> UnsupportedVisibilityQuery:
    return UnsupportedVisibilityQuery(f"{what}: {_SUPPORTED}")


@dataclass(slots=True)
class Plan:
    """Where and how to read a query's rows."""

    table: str
    descending: bool = True
    #: True: open runs only; False: closed runs only; None: both.
    is_open: bool | None = None
    #: column -> value equality filters (regular columns: ALLOW FILTERING in the partition).
    equals: dict[str, Any] = field(default_factory=dict)
    #: Bounds on the clustering time column: (op, value) with op in > >= < <=.
    lower: tuple[str, int] | None = None
    upper: tuple[str, int] | None = None

    @property
    def time_column(self) -> str:
        return _TIME_COLUMN[self.table]

    def where(self, after: tuple[int, str] | None) -> tuple[str, list[Any]]:
        """The WHERE clause after the partition key, and its params.

        `after` = (time, run_id) of the last row of the previous page: a multi-column
        slice on the clustering key. Cassandra allows at most one bound per side, and no
        mix of single- and multi-column restrictions, so every clustering restriction is
        written in the multi-column form and the page bound replaces the query's bound
        on its side (the previous page's row satisfied the query, so it is the tighter).
        """
        t = self.time_column
        parts: list[str] = []
        params: list[Any] = []
        lower, upper = self.lower, self.upper
        if after is not None:
            if self.descending:
                upper = None
                parts.append(f"({t}, run_id) < (?, ?)")
            else:
                lower = None
                parts.append(f"({t}, run_id) > (?, ?)")
            params.extend(after)
        for bound in (lower, upper):
            if bound is not None:
                parts.append(f"({t}) {bound[0]} (?)")
                params.append(bound[1])
        if self.is_open is not None and self.table == BY_START:
            parts.append("is_open = ?")
            params.append(self.is_open)
        for column, value in self.equals.items():
            parts.append(f"{column} = ?")
            params.append(value)
        return "".join(f" AND {p}" for p in parts), params

    @property
    def needs_filtering(self) -> bool:
        return bool(self.equals) or (self.is_open is not None and self.table == BY_START)

    def order_by(self) -> str:
        direction = "DESC" if self.descending else "ASC"
        return f"{self.time_column} {direction}, run_id {direction}"

    def sort_key(self, record: VisibilityRecord) -> tuple[int, str]:
        value = record.start_time if self.table == BY_START else record.close_time
        return (int(value or 0), record.run_id)

    def page_token(self, record: VisibilityRecord) -> bytes:
        time_value, run_id = self.sort_key(record)
        raw = json.dumps([self.table, time_value, run_id], separators=(",", ":")).encode()
        return _TOKEN_PREFIX + base64.urlsafe_b64encode(raw)

    def decode_token(self, token: bytes | None) -> tuple[int, str] | None:
        if not token:
            return None
        try:
            if not token.startswith(_TOKEN_PREFIX):
                raise ValueError
            table, time_value, run_id = json.loads(base64.urlsafe_b64decode(token[len(_TOKEN_PREFIX) :]))
            if table != self.table or not isinstance(time_value, int) or not isinstance(run_id, str):
                raise ValueError
        except (ValueError, TypeError):
            raise BadRequestError("next_page_token is malformed or belongs to another query") from None
        return time_value, run_id


def _conjuncts(expr: Expr | None) -> list[Expr]:
    if expr is None:
        return []
    if isinstance(expr, And):
        out: list[Expr] = []
        for item in expr.items:
            out.extend(_conjuncts(item))
        return out
    return [expr]


def plan_query(query: VisibilityQuery) -> Plan:
    """The Plan of a query, or UnsupportedVisibilityQuery naming what Cassandra cannot do."""
    if len(query.order_by) > 2:
        raise _refuse("ordering by more than one attribute")
    order_attr, descending = "StartTime", True
    if query.order_by:
        first = query.order_by[0]
        if first.attr.custom or first.attr.name not in ("StartTime", "CloseTime"):
            raise _refuse(f"ORDER BY {first.attr.name}")
        order_attr, descending = first.attr.name, first.descending
        if len(query.order_by) == 2:
            second = query.order_by[1]
            if second.attr.name != "RunID" or second.descending != descending:
                raise _refuse(f"ORDER BY {first.attr.name}, {second.attr.name}")
    plan = Plan(BY_START if order_attr == "StartTime" else BY_CLOSE, descending)
    closed_implied = False
    for item in _conjuncts(query.where):
        name = getattr(getattr(item, "attr", None), "name", None)
        if getattr(getattr(item, "attr", None), "custom", False):
            raise _refuse(f"custom search attribute {name}")
        if isinstance(item, IsNull) and name in ("CloseTime", "CloseStatus"):
            want_open = not item.negated
            if plan.is_open is not None and plan.is_open != want_open:
                raise _refuse("both open and closed runs required")
            plan.is_open = want_open
            closed_implied = closed_implied or not want_open
        elif isinstance(item, Compare) and item.op == "=" and name in _EQ_COLUMNS:
            column = _EQ_COLUMNS[name]
            value: Any = int(item.value) if name == "CloseStatus" else str(item.value)  # type: ignore[call-overload]
            if column in plan.equals and plan.equals[column] != value:
                raise _refuse(f"two different values for {name}")
            plan.equals[column] = value
            closed_implied = closed_implied or name == "CloseStatus"
        elif isinstance(item, Compare | Between) and name == order_attr:
            bounds: list[tuple[str, int]]
            if isinstance(item, Between):
                bounds = [(">=", int(item.low)), ("<=", int(item.high))]  # type: ignore[call-overload]
            elif item.op == "=":
                bounds = [(">=", int(item.value)), ("<=", int(item.value))]  # type: ignore[call-overload]
            elif item.op in (">", ">=", "<", "<="):
                bounds = [(item.op, int(item.value))]  # type: ignore[call-overload]
            else:
                raise _refuse(f"{name} {item.op}")
            for op, value in bounds:
                side = "lower" if op.startswith(">") else "upper"
                if getattr(plan, side) is not None:
                    raise _refuse(f"more than one {side} bound on {name}")
                setattr(plan, side, (op, value))
            closed_implied = closed_implied or name == "CloseTime"
        elif isinstance(item, Compare | Between) and name in ("StartTime", "CloseTime"):
            raise _refuse(f"a {name} range while ordering by {order_attr}")
        else:
            raise _refuse(f"the condition {_describe(item)}")
    if plan.table == BY_CLOSE:
        if plan.is_open:
            raise _refuse("ordering open runs by CloseTime")
        if not closed_implied:
            # Open runs have no close time and would have to sort last: refuse rather than drop them.
            raise _refuse("ordering by CloseTime without restricting to closed runs")
        plan.is_open = False
    elif "close_status" in plan.equals:
        if plan.is_open:
            return Plan(BY_START, descending, is_open=True, equals={"close_status": -1})  # matches nothing
        plan.is_open = False
    return plan


def _describe(item: Expr) -> str:
    name = getattr(getattr(item, "attr", None), "name", "?")
    if isinstance(item, Compare):
        return f"{name} {item.op} ..."
    return f"{type(item).__name__} on {name}" if name != "?" else type(item).__name__
