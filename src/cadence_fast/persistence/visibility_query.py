"""The typed AST of Cadence's visibility query language.

`cadence_fast.visibility.query` parses the text once into these nodes; each adapter
compiles them to its own filter (`cadence_fast.persistence.sqlvisibility.compile_query`
for the SQL stores). Attribute names are canonical (the system names below, or a
registered custom search attribute) and values are already typed, so no user text
ever reaches a database as code.

Value types, per `AttrType` (what a compiler may rely on):
- STRING, KEYWORD: str
- INT: int; DOUBLE: float; BOOL: bool
- DATETIME: int, nanoseconds since the Unix epoch (UTC)
- CloseStatus: int, the uber.cadence.api.v1.WorkflowExecutionCloseStatus value
  (1 = COMPLETED ... 6 = TIMED_OUT), i.e. what the executions_visibility row holds.

Semantics (as Cadence's Elasticsearch visibility): a row that has no value for an
attribute (an open run's CloseTime/CloseStatus, an unset custom attribute) matches
no `=`, range, BETWEEN or IN predicate, and matches every `!=` and NOT IN predicate.
Custom KEYWORD/STRING attributes may hold a list of strings (e.g. CadenceChangeVersion);
`=`, `!=` and IN then test membership.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


class AttrType(enum.Enum):
    STRING = "string"  # full text in Cadence; compared as a string here
    KEYWORD = "keyword"
    INT = "int"
    DOUBLE = "double"
    BOOL = "bool"
    DATETIME = "datetime"  # int nanoseconds


#: System attributes: name -> (type, VisibilityRecord field).
SYSTEM_ATTRIBUTES: dict[str, tuple[AttrType, str]] = {
    "DomainID": (AttrType.KEYWORD, "domain_id"),
    "WorkflowID": (AttrType.KEYWORD, "workflow_id"),
    "RunID": (AttrType.KEYWORD, "run_id"),
    "WorkflowType": (AttrType.KEYWORD, "workflow_type"),
    "StartTime": (AttrType.DATETIME, "start_time"),
    "ExecutionTime": (AttrType.DATETIME, "execution_time"),
    "CloseTime": (AttrType.DATETIME, "close_time"),
    "CloseStatus": (AttrType.INT, "close_status"),
    "HistoryLength": (AttrType.INT, "history_length"),
    "TaskList": (AttrType.KEYWORD, "task_list"),
    "IsCron": (AttrType.BOOL, "is_cron"),
    "UpdateTime": (AttrType.DATETIME, "update_time"),
}


@dataclass(frozen=True, slots=True)
class Attr:
    name: str
    type: AttrType
    custom: bool = False  # a custom search attribute (lives in search_attributes)


@dataclass(frozen=True, slots=True)
class Compare:
    attr: Attr
    op: str  # one of = != > >= < <=
    value: object


@dataclass(frozen=True, slots=True)
class Between:
    """low <= attr <= high (both ends inclusive, as Cadence's BETWEEN)."""

    attr: Attr
    low: object
    high: object


@dataclass(frozen=True, slots=True)
class In:
    attr: Attr
    values: tuple[object, ...]
    negated: bool = False


@dataclass(frozen=True, slots=True)
class IsNull:
    """`CloseTime = missing` / open-only filters: the attribute has no value."""

    attr: Attr
    negated: bool = False


@dataclass(frozen=True, slots=True)
class And:
    items: tuple[Expr, ...]


@dataclass(frozen=True, slots=True)
class Or:
    items: tuple[Expr, ...]


Expr = Compare | Between | In | IsNull | And | Or


@dataclass(frozen=True, slots=True)
class OrderBy:
    attr: Attr
    descending: bool = True


@dataclass(frozen=True, slots=True)
class VisibilityQuery:
    """A parsed query. `order_by` empty means the default: StartTime DESC (then RunID).

    Rows without a value for an ordering attribute sort last in either direction
    (Elasticsearch's `missing: _last`).
    """

    where: Expr | None = None
    order_by: tuple[OrderBy, ...] = field(default_factory=tuple)


def attr(name: str) -> Attr:
    """The Attr of a system attribute, e.g. attr("WorkflowType")."""
    return Attr(name, SYSTEM_ATTRIBUTES[name][0])


def conjunction(*items: Expr | None) -> Expr | None:
    """AND of the given expressions, skipping None; None when nothing is left."""
    parts = tuple(i for i in items if i is not None)
    if not parts:
        return None
    return parts[0] if len(parts) == 1 else And(parts)
