"""Visibility queries beyond the indexed shapes: evaluated in Python over a bounded scan (pure).

Cassandra cannot filter or sort by custom search attributes, OR, IN and the like (Cadence
sends those to Elasticsearch). Rather than refusing them outright, the store reads the
domain's whole visibility partition — when it holds at most ``visibility_scan_limit``
runs (a URL option) — and evaluates the query here with the semantics of
`cadence_fast.persistence.visibility_query` (those of Cadence's Elasticsearch store and of
the SQL compiler): a missing value matches no ``=``/range/BETWEEN/IN and every
``!=``/NOT IN; a multi-valued keyword attribute matches ``=``/``!=``/IN by membership and
has no scalar value for ranges or ordering; missing values sort last in either
direction; ties are broken by run id in the direction of the last key. Larger domains
get `UnsupportedVisibilityQuery` naming the limit.
"""

from __future__ import annotations

import base64
import functools
import json
from collections.abc import Sequence
from typing import Any

from cadence_fast.errors import BadRequestError
from cadence_fast.persistence.records import VisibilityRecord
from cadence_fast.persistence.visibility_query import (
    SYSTEM_ATTRIBUTES,
    And,
    Attr,
    AttrType,
    Between,
    Compare,
    Expr,
    In,
    IsNull,
    Or,
    OrderBy,
    VisibilityQuery,
)

_TOKEN_PREFIX = b"cfs1:"
_DEFAULT_ORDER = (OrderBy(Attr("StartTime", AttrType.DATETIME), descending=True),)
_RUN_ID = Attr("RunID", AttrType.KEYWORD)
_NUMERIC = (AttrType.INT, AttrType.DOUBLE, AttrType.DATETIME)


def _raw(attr: Attr, record: VisibilityRecord) -> Any:
    if attr.custom:
        return (record.search_attributes or {}).get(attr.name)
    return getattr(record, SYSTEM_ATTRIBUTES[attr.name][1])


def _typed(attr: Attr, value: Any) -> Any:
    """A scalar of the attribute's type, or None (missing, a list, or a value of another type)."""
    if value is None or isinstance(value, list | dict):
        return None
    t = attr.type
    if t is AttrType.BOOL:
        return value if isinstance(value, bool) else (bool(value) if not attr.custom else None)
    if t in _NUMERIC:
        return value if isinstance(value, int | float) and not isinstance(value, bool) else None
    return value if isinstance(value, str) else None


def _members(attr: Attr, value: Any) -> list[str] | None:
    """The strings a keyword/string attribute holds (a list for multi-valued ones); None if missing."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [v for v in value if isinstance(v, str)]
    return None


def _query_value(attr: Attr, value: Any) -> Any:
    t = attr.type
    if t is AttrType.BOOL:
        return bool(value)
    if t in (AttrType.INT, AttrType.DATETIME):
        return int(value)
    if t is AttrType.DOUBLE:
        return float(value)
    return str(value)


_OPS = {
    "=": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
}


def matches(expr: Expr | None, record: VisibilityRecord) -> bool:
    """Whether a record satisfies the query's WHERE expression."""
    if expr is None:
        return True
    if isinstance(expr, And):
        return all(matches(e, record) for e in expr.items)
    if isinstance(expr, Or):
        return any(matches(e, record) for e in expr.items)
    if isinstance(expr, IsNull):
        present = _raw(expr.attr, record) is not None
        return present if expr.negated else not present
    keyword = expr.attr.custom and expr.attr.type in (AttrType.STRING, AttrType.KEYWORD)
    if isinstance(expr, In):
        if keyword:
            held = _members(expr.attr, _raw(expr.attr, record))
            wanted = {str(v) for v in expr.values}
            hit = held is not None and any(v in wanted for v in held)
        else:
            value = _typed(expr.attr, _raw(expr.attr, record))
            hit = value is not None and value in {_query_value(expr.attr, v) for v in expr.values}
        return not hit if expr.negated else hit
    if isinstance(expr, Between):
        value = _typed(expr.attr, _raw(expr.attr, record))
        low, high = _query_value(expr.attr, expr.low), _query_value(expr.attr, expr.high)
        return value is not None and low <= value <= high
    if isinstance(expr, Compare):
        if expr.op not in _OPS:
            raise BadRequestError(f"invalid operator {expr.op!r} for {expr.attr.name}")
        if keyword and expr.op in ("=", "!="):
            held = _members(expr.attr, _raw(expr.attr, record))
            hit = held is not None and str(expr.value) in held
            return hit if expr.op == "=" else not hit
        value = _typed(expr.attr, _raw(expr.attr, record))
        if value is None:
            return expr.op == "!="
        return bool(_OPS[expr.op](value, _query_value(expr.attr, expr.value)))
    raise TypeError(f"not a visibility query node: {expr!r}")


def sort_keys(query: VisibilityQuery) -> tuple[OrderBy, ...]:
    keys = tuple(query.order_by or _DEFAULT_ORDER)
    if not any(k.attr.name == "RunID" and not k.attr.custom for k in keys):
        keys = (*keys, OrderBy(_RUN_ID, keys[-1].descending))
    return keys


def sort_values(keys: Sequence[OrderBy], record: VisibilityRecord) -> list[Any]:
    return [_typed(k.attr, _raw(k.attr, record)) for k in keys]


@functools.total_ordering
class _Desc:
    """Reverses the order of any comparable value."""

    __slots__ = ("v",)

    def __init__(self, v: Any) -> None:
        self.v = v

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Desc) and self.v == other.v

    def __lt__(self, other: _Desc) -> bool:
        return bool(other.v < self.v)


def order_key(keys: Sequence[OrderBy], values: Sequence[Any]) -> tuple[Any, ...]:
    """A tuple that sorts rows in the query's order, missing values last in either direction."""
    out: list[Any] = []
    for k, v in zip(keys, values, strict=True):
        if v is None:
            out.append((1, 0))
        else:
            comparable = int(v) if isinstance(v, bool) else v
            out.append((0, _Desc(comparable) if k.descending else comparable))
    return tuple(out)


def page_token(keys: Sequence[OrderBy], record: VisibilityRecord) -> bytes:
    raw = json.dumps(sort_values(keys, record), separators=(",", ":")).encode()
    return _TOKEN_PREFIX + base64.urlsafe_b64encode(raw)


def decode_token(keys: Sequence[OrderBy], token: bytes) -> list[Any]:
    try:
        if not token.startswith(_TOKEN_PREFIX):
            raise ValueError
        values = json.loads(base64.urlsafe_b64decode(token[len(_TOKEN_PREFIX) :]))
        if not isinstance(values, list) or len(values) != len(keys):
            raise ValueError
    except (ValueError, TypeError):
        raise BadRequestError("next_page_token is malformed or belongs to another query") from None
    return values


def run_query(
    query: VisibilityQuery, records: Sequence[VisibilityRecord], page_size: int, token: bytes | None
) -> tuple[list[VisibilityRecord], bytes | None]:
    """Filter, order and page `records` (a domain's rows) by `query`, with keyset page tokens."""
    keys = sort_keys(query)
    hits = [r for r in records if matches(query.where, r)]
    hits.sort(key=lambda r: order_key(keys, sort_values(keys, r)))
    if token:
        after = order_key(keys, decode_token(keys, token))
        hits = [r for r in hits if order_key(keys, sort_values(keys, r)) > after]
    if page_size > 0 and len(hits) > page_size:
        page = hits[:page_size]
        return page, page_token(keys, page[-1])
    return hits, None
