"""The typed AST of Cadence's visibility query language.

`cadence_fast.visibility.query` parses the text once into these nodes; each adapter
compiles them to its own filter. Attribute names are canonical (the system names
below, or a registered custom search attribute) and values are already typed, so no
user text ever reaches a database as code.
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
    where: Expr | None = None
    order_by: tuple[OrderBy, ...] = field(default_factory=tuple)
