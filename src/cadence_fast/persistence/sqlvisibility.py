"""Compile a visibility query (the typed AST) to SQL for the SQL stores.

One compiler serves SQLite, PostgreSQL and MySQL/MariaDB: they share the
`executions_visibility` table

    executions_visibility(domain_id, run_id PK, workflow_id, workflow_type,
        start_time INTEGER ns, execution_time, close_time NULL while open,
        close_status NULL while open, history_length, task_list, is_cron 0/1,
        memo BLOB, search_attributes TEXT (a JSON object, or NULL), update_time)

and differ only in placeholders and in how a custom search attribute is read out of
the `search_attributes` JSON. User input reaches the database only as bound
parameters; the attribute names that appear in the SQL text are registered names,
checked against a strict identifier pattern here as well.

An adapter's list_workflows, with keyset paging (stable under concurrent starts and
closes, unlike OFFSET)::

    cq = compile_query(query, "sqlite")
    where, params = f"domain_id = ? AND ({cq.where})", [domain_id, *cq.params]
    if token:
        seek_sql, seek_params = cq.after_token(token)    # BadRequestError if malformed
        where, params = f"{where} AND ({seek_sql})", [*params, *seek_params]
    rows = SELECT ... WHERE {where} ORDER BY {cq.order_by} LIMIT page_size
    next_token = cq.page_token(records[-1]) if len(records) == page_size else None

Semantics follow Cadence's Elasticsearch visibility (see visibility_query): a missing
value matches no `=`/range/IN and every `!=`/NOT IN; missing values sort last.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

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

DIALECTS = ("sqlite", "postgres", "mysql")

#: System columns that are NULL while a run is open.
NULLABLE_COLUMNS = frozenset({"close_time", "close_status"})

#: Names that may appear inside SQL text (custom search attribute names).
SAFE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

_SQL_OPS = {"=": "=", "!=": "<>", ">": ">", ">=": ">=", "<": "<", "<=": "<="}
_TOKEN_PREFIX = b"cfv1:"
_DEFAULT_ORDER = (OrderBy(Attr("StartTime", AttrType.DATETIME), descending=True),)
_RUN_ID = Attr("RunID", AttrType.KEYWORD)


@dataclass(frozen=True, slots=True)
class SortKey:
    """One ORDER BY term; `nullable` keys sort their NULLs last in both directions."""

    attr: Attr
    expr: str
    descending: bool
    nullable: bool


@dataclass(slots=True)
class CompiledQuery:
    #: SQL boolean over the executions_visibility columns ("1=1" when no filter).
    where: str
    #: Bound parameters for `where`, in order.
    params: list[object]
    #: ORDER BY list without the keyword; always ends with run_id (a unique tiebreak).
    order_by: str
    dialect: str = "sqlite"
    sort_keys: tuple[SortKey, ...] = field(default_factory=tuple)

    # --- keyset paging ------------------------------------------------------------------

    def sort_values(self, record: VisibilityRecord) -> list[object]:
        """The values of this query's ORDER BY keys for one row."""
        return [_record_value(k.attr, record) for k in self.sort_keys]

    def page_token(self, record: VisibilityRecord) -> bytes:
        """An opaque next_page_token: the sort values of the last row of a page."""
        raw = json.dumps(self.sort_values(record), separators=(",", ":")).encode()
        return _TOKEN_PREFIX + base64.urlsafe_b64encode(raw)

    def decode_token(self, token: bytes) -> list[object]:
        """The sort values a page_token carried; BadRequestError if it is not one of ours."""
        try:
            if not token.startswith(_TOKEN_PREFIX):
                raise ValueError
            values = json.loads(base64.urlsafe_b64decode(token[len(_TOKEN_PREFIX) :]))
            if not isinstance(values, list) or len(values) != len(self.sort_keys):
                raise ValueError
        except (ValueError, TypeError):
            raise BadRequestError("next_page_token is malformed or belongs to another query") from None
        return values

    def seek(self, last: Sequence[object]) -> tuple[str, list[object]]:
        """SQL boolean (and params) selecting the rows strictly after a row with sort values `last`."""
        if len(last) != len(self.sort_keys):
            raise ValueError("seek needs one value per sort key")
        c = _Compiler(self.dialect)
        keys = self.sort_keys
        same_direction = all(k.descending == keys[0].descending for k in keys)
        plain = same_direction and not any(k.nullable for k in keys) and None not in last
        cmp = "<" if keys[0].descending else ">"
        if plain and self.dialect in ("sqlite", "postgres"):
            # A row-value comparison is one index range in SQLite and PostgreSQL.
            exprs = ", ".join(k.expr for k in keys)
            marks = ", ".join(c.ph for _ in keys)
            return f"({exprs}) {cmp} ({marks})", [c.param(k.attr, v) for k, v in zip(keys, last, strict=True)]
        sql, params = self._seek_terms(c, last)
        if plain:
            # A redundant bound on the leading key gives MySQL's optimizer an index range too.
            first = c.param(keys[0].attr, last[0])
            return f"{keys[0].expr} {cmp}= {c.ph} AND ({sql})", [first, *params]
        return sql, params

    def _seek_terms(self, c: _Compiler, last: Sequence[object]) -> tuple[str, list[object]]:
        sql = ""
        params: list[object] = []
        # Build from the last key outwards: after(i) = gt(i) OR (eq(i) AND after(i+1)).
        for key, value in reversed(list(zip(self.sort_keys, last, strict=True))):
            cmp = "<" if key.descending else ">"
            if value is None:
                # NULLs sort last: nothing is after a NULL on this key, only equal (NULL) rows.
                gt, gt_params = "", []
                eq, eq_params = f"{key.expr} IS NULL", []
            else:
                v = c.param(key.attr, value)
                gt = f"{key.expr} {cmp} {c.ph}"
                if key.nullable:
                    gt = f"({key.expr} IS NULL OR {gt})"
                gt_params = [v]
                eq, eq_params = f"{key.expr} = {c.ph}", [v]
            if not sql:
                sql, params = (gt, gt_params) if gt else ("1=0", [])
            else:
                rest = f"({eq} AND ({sql}))"
                rest_params = [*eq_params, *params]
                if gt:
                    sql, params = f"{gt} OR {rest}", [*gt_params, *rest_params]
                else:
                    sql, params = rest, rest_params
        return sql, params

    def after_token(self, token: bytes) -> tuple[str, list[object]]:
        """seek() for the row a next_page_token names."""
        return self.seek(self.decode_token(token))


def compile_query(query: VisibilityQuery, dialect: str) -> CompiledQuery:
    """Compile the AST for `dialect` ("sqlite", "postgres" or "mysql")."""
    c = _Compiler(dialect)
    params: list[object] = []
    where = c.expr(query.where, params) if query.where is not None else "1=1"
    not_null = _non_null_attrs(query.where)
    keys: list[SortKey] = []
    for ob in query.order_by or _DEFAULT_ORDER:
        nullable = c.nullable(ob.attr) and ob.attr.name not in not_null
        keys.append(SortKey(ob.attr, c.value_expr(ob.attr), ob.descending, nullable))
    if not any(k.attr.name == "RunID" for k in keys):
        keys.append(SortKey(_RUN_ID, "run_id", keys[-1].descending, False))
    terms: list[str] = []
    for k in keys:
        direction = "DESC" if k.descending else "ASC"
        if k.nullable and dialect == "postgres":
            direction += " NULLS LAST"  # PostgreSQL sorts NULL as the largest value
        elif k.nullable and not k.descending:
            # SQLite and MySQL sort NULL as the smallest value: last already when descending
            # (so an index serves "CloseTime DESC"), first when ascending unless told otherwise.
            terms.append(f"({k.expr} IS NULL)")
        terms.append(f"{k.expr} {direction}")
    return CompiledQuery(where, params, ", ".join(terms), dialect, tuple(keys))


# --- internals ----------------------------------------------------------------------------


def _record_value(attr: Attr, record: VisibilityRecord) -> object:
    if attr.custom:
        value = (record.search_attributes or {}).get(attr.name)
        # A multi-valued (list) attribute has no scalar sort value: the SQL reads it as NULL.
        return None if isinstance(value, list | dict) else value
    value = getattr(record, SYSTEM_ATTRIBUTES[attr.name][1])
    return int(value) if isinstance(value, bool) else value


def _non_null_attrs(expr: Expr | None) -> set[str]:
    """Attributes the WHERE clause forces to have a value (so their sort needs no NULL term)."""
    items: tuple[Expr, ...] = expr.items if isinstance(expr, And) else (expr,) if expr is not None else ()
    out: set[str] = set()
    for item in items:
        if isinstance(item, Compare) and item.op != "!=" or isinstance(item, Between):
            out.add(item.attr.name)
        elif isinstance(item, In) and not item.negated or isinstance(item, IsNull) and item.negated:
            out.add(item.attr.name)
    return out


class _Compiler:
    def __init__(self, dialect: str) -> None:
        if dialect not in DIALECTS:
            raise ValueError(f"unknown SQL dialect {dialect!r}; known: {', '.join(DIALECTS)}")
        self.dialect = dialect
        self.ph = "?" if dialect == "sqlite" else "%s"

    # --- attribute access ---------------------------------------------------------------

    def nullable(self, attr: Attr) -> bool:
        return attr.custom or SYSTEM_ATTRIBUTES[attr.name][1] in NULLABLE_COLUMNS

    @staticmethod
    def _name(attr: Attr) -> str:
        if not SAFE_NAME.match(attr.name):
            raise BadRequestError(f"search attribute name {attr.name!r} is not a valid identifier")
        return attr.name

    def _json_path(self, attr: Attr) -> str:
        return f"'$.\"{self._name(attr)}\"'"

    def _pg_json(self, attr: Attr) -> str:
        return f"(search_attributes::jsonb -> '{self._name(attr)}')"

    def value_expr(self, attr: Attr) -> str:
        """A typed scalar SQL expression for the attribute (NULL when the row has none)."""
        if not attr.custom:
            return SYSTEM_ATTRIBUTES[attr.name][1]
        t = attr.type
        if self.dialect == "sqlite":
            path = self._json_path(attr)
            if t in (AttrType.STRING, AttrType.KEYWORD):
                # Lists (multi-valued keywords) have no scalar value.
                return (
                    f"(CASE json_type(search_attributes, {path}) WHEN 'text' "
                    f"THEN json_extract(search_attributes, {path}) END)"
                )
            # Numbers and datetimes (int ns) come back as numbers; booleans as 1/0.
            return f"json_extract(search_attributes, {path})"
        if self.dialect == "postgres":
            j = self._pg_json(attr)
            text = f"(search_attributes::jsonb ->> '{self._name(attr)}')"
            # The CASE guards the cast: a row written under another type never errors the query.
            if t in (AttrType.INT, AttrType.DATETIME, AttrType.DOUBLE):
                return f"(CASE WHEN jsonb_typeof({j}) = 'number' THEN {text}::numeric END)"
            if t is AttrType.BOOL:
                return f"(CASE WHEN jsonb_typeof({j}) = 'boolean' THEN {text}::boolean END)"
            # Byte order, as Elasticsearch sorts keywords (not the database's locale).
            return f"(CASE WHEN jsonb_typeof({j}) = 'string' THEN {text} END) COLLATE \"C\""
        # mysql / mariadb
        path = self._json_path(attr)
        raw = f"JSON_EXTRACT(search_attributes, {path})"
        text = f"JSON_UNQUOTE({raw})"
        if t in (AttrType.INT, AttrType.DATETIME):
            return f"CAST({text} AS SIGNED)"
        if t is AttrType.DOUBLE:
            return f"CAST({text} AS DOUBLE)"
        if t is AttrType.BOOL:
            return text  # 'true' / 'false'
        # Binary: keyword comparisons are case-sensitive, whatever the connection collation.
        return f"(CASE WHEN JSON_TYPE({raw}) = 'STRING' THEN CAST({text} AS BINARY) END)"

    def param(self, attr: Attr, value: object) -> object:
        """A query value as the bound parameter the expression of `attr` compares with."""
        t = attr.type
        if t is AttrType.BOOL:
            b = bool(value)
            if not attr.custom or self.dialect == "sqlite":
                return int(b)
            return b if self.dialect == "postgres" else ("true" if b else "false")
        if t in (AttrType.INT, AttrType.DATETIME):
            return int(value)  # type: ignore[call-overload]
        if t is AttrType.DOUBLE:
            return float(value)  # type: ignore[arg-type]
        return str(value)

    def _membership(self, attr: Attr, values: Sequence[object], params: list[object]) -> str:
        """Custom string/keyword attribute equals one of `values`, or (a list) contains one."""
        if self.dialect == "sqlite":
            path = self._json_path(attr)
            marks = ", ".join(self.ph for _ in values)
            params.extend(str(v) for v in values)
            # json_each of a scalar yields the scalar itself, so one form serves both.
            return (
                f"EXISTS (SELECT 1 FROM json_each(search_attributes, {path}) "
                f"WHERE json_each.type = 'text' AND json_each.value IN ({marks}))"
            )
        parts: list[str] = []
        for v in values:
            params.append(str(v))
            if self.dialect == "postgres":
                parts.append(f"COALESCE({self._pg_json(attr)} @> to_jsonb({self.ph}::text), false)")
            else:
                parts.append(
                    f"COALESCE(JSON_CONTAINS(search_attributes, JSON_QUOTE({self.ph}), {self._json_path(attr)}), 0)"
                )
        return parts[0] if len(parts) == 1 else "(" + " OR ".join(parts) + ")"

    def _is_keyword(self, attr: Attr) -> bool:
        return attr.custom and attr.type in (AttrType.STRING, AttrType.KEYWORD)

    # --- expressions -----------------------------------------------------------------------

    def expr(self, e: Expr, params: list[object]) -> str:
        if isinstance(e, And | Or):
            if not e.items:
                return "1=1" if isinstance(e, And) else "1=0"
            joiner = " AND " if isinstance(e, And) else " OR "
            return "(" + joiner.join(self.expr(i, params) for i in e.items) + ")"
        if isinstance(e, Compare):
            return self._compare(e, params)
        if isinstance(e, Between):
            x = self.value_expr(e.attr)
            params.extend((self.param(e.attr, e.low), self.param(e.attr, e.high)))
            return f"{x} BETWEEN {self.ph} AND {self.ph}"
        if isinstance(e, In):
            return self._in(e, params)
        if isinstance(e, IsNull):
            return self._is_null(e)
        raise TypeError(f"not a visibility query node: {e!r}")

    def _compare(self, e: Compare, params: list[object]) -> str:
        if e.op not in _SQL_OPS:
            raise BadRequestError(f"invalid operator {e.op!r} for {e.attr.name}")
        if self._is_keyword(e.attr) and e.op in ("=", "!="):
            member = self._membership(e.attr, [e.value], params)
            return member if e.op == "=" else f"NOT {member}"
        x = self.value_expr(e.attr)
        params.append(self.param(e.attr, e.value))
        sql = f"{x} {_SQL_OPS[e.op]} {self.ph}"
        if e.op == "!=" and self.nullable(e.attr):
            return f"({x} IS NULL OR {sql})"
        return sql

    def _in(self, e: In, params: list[object]) -> str:
        if not e.values:
            return "1=1" if e.negated else "1=0"
        if self._is_keyword(e.attr):
            member = self._membership(e.attr, e.values, params)
            return f"NOT {member}" if e.negated else member
        x = self.value_expr(e.attr)
        params.extend(self.param(e.attr, v) for v in e.values)
        marks = ", ".join(self.ph for _ in e.values)
        if not e.negated:
            return f"{x} IN ({marks})"
        if self.nullable(e.attr):
            return f"({x} IS NULL OR {x} NOT IN ({marks}))"
        return f"{x} NOT IN ({marks})"

    def _is_null(self, e: IsNull) -> str:
        if e.attr.custom:
            if self.dialect == "sqlite":
                x = f"json_type(search_attributes, {self._json_path(e.attr)})"
            elif self.dialect == "postgres":
                x = self._pg_json(e.attr)
            else:
                x = f"JSON_EXTRACT(search_attributes, {self._json_path(e.attr)})"
        else:
            x = SYSTEM_ATTRIBUTES[e.attr.name][1]
        return f"{x} IS NOT NULL" if e.negated else f"{x} IS NULL"
