"""Parse Cadence's SQL-like visibility query language into the typed AST.

The language is what Cadence's Elasticsearch visibility accepts in
ListWorkflowExecutions / ScanWorkflowExecutions / CountWorkflowExecutions::

    query      := [expr] [ORDER BY term (',' term)*]
    expr       := and_expr (OR and_expr)*
    and_expr   := primary (AND primary)*
    primary    := '(' expr ')' | predicate
    predicate  := attr op value                       op: = != <> > >= < <=
                | attr (= | != | <>) missing          (no value / has a value)
                | attr IS [NOT] NULL                  (same as = missing / != missing)
                | attr [NOT] BETWEEN value AND value  (inclusive)
                | attr [NOT] IN '(' value (',' value)* ')'
    term       := attr [ASC | DESC]
    value      := 'text' | "text" | number | true | false

Keywords are case-insensitive; attribute names are exact (WorkflowID, RunID,
WorkflowType, StartTime, ExecutionTime, CloseTime, CloseStatus, HistoryLength,
TaskList, IsCron, UpdateTime, or a registered custom search attribute; `backquoted`
names are accepted). Values are checked against the attribute's type:
- times (StartTime, CustomDatetimeField, ...): RFC 3339 strings or epoch nanoseconds;
- CloseStatus: a name (COMPLETED, Failed, canceled, TERMINATED, CONTINUED_AS_NEW,
  TimedOut, ...) or Cadence's integer (0 = COMPLETED ... 5 = TIMED_OUT, the values
  Cadence stores in Elasticsearch);
- bools: true/false; ints/doubles: numbers (or numeric strings).
Any error is a BadRequestError that names the offending token and its position.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from cadence_fast.errors import BadRequestError
from cadence_fast.persistence.records import CloseStatus
from cadence_fast.persistence.visibility_query import (
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
from cadence_fast.visibility.search_attributes import SearchAttributeRegistry, parse_datetime

MAX_QUERY_LENGTH = 16 * 1024

_KEYWORDS = {"AND", "OR", "NOT", "BETWEEN", "IN", "ORDER", "BY", "ASC", "DESC", "IS", "NULL", "MISSING"}
_OPS = ("!=", "<>", ">=", "<=", "=", ">", "<")

_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<number>-?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][+-]?\d+)?)
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<quoted_ident>`[^`]*`)
  | (?P<string>'(?:[^'\\]|\\.|'')*'|"(?:[^"\\]|\\.|"")*")
  | (?P<op>!=|<>|>=|<=|=|>|<)
  | (?P<punct>[(),])
    """,
    re.VERBOSE,
)

#: Cadence's (thrift / Elasticsearch) close status integers -> our stored api.v1 values.
_CADENCE_CLOSE_STATUS_INTS = {
    0: CloseStatus.COMPLETED,
    1: CloseStatus.FAILED,
    2: CloseStatus.CANCELED,
    3: CloseStatus.TERMINATED,
    4: CloseStatus.CONTINUED_AS_NEW,
    5: CloseStatus.TIMED_OUT,
}
_CLOSE_STATUS_NAMES = {
    "COMPLETED": CloseStatus.COMPLETED,
    "FAILED": CloseStatus.FAILED,
    "CANCELED": CloseStatus.CANCELED,
    "CANCELLED": CloseStatus.CANCELED,
    "TERMINATED": CloseStatus.TERMINATED,
    "CONTINUEDASNEW": CloseStatus.CONTINUED_AS_NEW,
    "TIMEDOUT": CloseStatus.TIMED_OUT,
}


@dataclass(frozen=True, slots=True)
class Token:
    kind: str  # ident, quoted_ident, number, string, op, punct, end
    text: str
    pos: int  # 1-based character position in the query

    @property
    def keyword(self) -> str | None:
        if self.kind == "ident" and self.text.upper() in _KEYWORDS | {"TRUE", "FALSE"}:
            return self.text.upper()
        return None

    def describe(self) -> str:
        return "end of query" if self.kind == "end" else f"{self.text!r} at position {self.pos}"


def _error(message: str) -> BadRequestError:
    return BadRequestError(f"invalid query: {message}")


def tokenize(text: str) -> list[Token]:
    tokens: list[Token] = []
    i = 0
    while i < len(text):
        m = _TOKEN.match(text, i)
        if m is None:
            ch = text[i]
            if ch in "'\"":
                raise _error(f"unterminated string starting at position {i + 1}")
            raise _error(f"unexpected character {ch!r} at position {i + 1}")
        kind = m.lastgroup or ""
        if kind != "ws":
            tokens.append(Token(kind, m.group(), i + 1))
        i = m.end()
    tokens.append(Token("end", "", len(text) + 1))
    return tokens


def _unquote(tok: Token) -> str:
    body, quote = tok.text[1:-1], tok.text[0]
    out: list[str] = []
    i = 0
    while i < len(body):
        ch = body[i]
        if ch == "\\" and i + 1 < len(body):
            nxt = body[i + 1]
            out.append({"n": "\n", "t": "\t", "r": "\r", "0": "\0"}.get(nxt, nxt))
            i += 2
        elif ch == quote and i + 1 < len(body) and body[i + 1] == quote:
            out.append(quote)
            i += 2
        else:
            out.append(ch)
            i += 1
    return "".join(out)


class _Parser:
    def __init__(self, text: str, registry: SearchAttributeRegistry) -> None:
        self.tokens = tokenize(text)
        self.i = 0
        self.registry = registry

    # --- token helpers ---------------------------------------------------------------------

    @property
    def tok(self) -> Token:
        return self.tokens[self.i]

    def advance(self) -> Token:
        tok = self.tokens[self.i]
        if tok.kind != "end":
            self.i += 1
        return tok

    def at_keyword(self, *words: str) -> bool:
        return self.tok.keyword in words

    def expect_keyword(self, word: str) -> Token:
        if not self.at_keyword(word):
            raise _error(f"expected {word} but found {self.tok.describe()}")
        return self.advance()

    def expect_punct(self, ch: str) -> Token:
        if not (self.tok.kind == "punct" and self.tok.text == ch):
            raise _error(f"expected {ch!r} but found {self.tok.describe()}")
        return self.advance()

    # --- grammar ------------------------------------------------------------------------------

    def query(self) -> VisibilityQuery:
        where: Expr | None = None
        if self.tok.kind != "end" and not self.at_keyword("ORDER"):
            where = self.expr()
        order: list[OrderBy] = []
        if self.at_keyword("ORDER"):
            self.advance()
            self.expect_keyword("BY")
            order.append(self.order_term())
            while self.tok.kind == "punct" and self.tok.text == ",":
                self.advance()
                order.append(self.order_term())
        if self.tok.kind != "end":
            raise _error(f"unexpected {self.tok.describe()}")
        return VisibilityQuery(where, tuple(order))

    def expr(self) -> Expr:
        items = [self.and_expr()]
        while self.at_keyword("OR"):
            self.advance()
            items.append(self.and_expr())
        return items[0] if len(items) == 1 else Or(tuple(items))

    def and_expr(self) -> Expr:
        items = [self.primary()]
        while self.at_keyword("AND"):
            self.advance()
            items.append(self.primary())
        return items[0] if len(items) == 1 else And(tuple(items))

    def primary(self) -> Expr:
        if self.tok.kind == "punct" and self.tok.text == "(":
            self.advance()
            inner = self.expr()
            self.expect_punct(")")
            return inner
        return self.predicate()

    def attribute(self) -> Attr:
        tok = self.advance()
        if tok.kind == "quoted_ident":
            name = tok.text[1:-1]
        elif tok.kind == "ident" and tok.keyword is None:
            name = tok.text
        else:
            raise _error(f"expected a search attribute but found {tok.describe()}")
        if name == "DomainID":
            raise _error(f"DomainID at position {tok.pos} cannot be queried: the request names the domain")
        attr = self.registry.lookup(name)
        if attr is None:
            hint = self.registry.suggest(name)
            raise _error(
                f"unknown search attribute {name!r} at position {tok.pos}"
                + (f" (did you mean {hint!r}?)" if hint else "")
            )
        return attr

    def predicate(self) -> Expr:
        attr = self.attribute()
        if self.at_keyword("IS"):
            self.advance()
            negated = False
            if self.at_keyword("NOT"):
                self.advance()
                negated = True
            self.expect_keyword("NULL")
            return IsNull(attr, negated)
        negated = False
        if self.at_keyword("NOT"):
            self.advance()
            negated = True
            if not self.at_keyword("IN", "BETWEEN"):
                raise _error(f"expected IN or BETWEEN after NOT but found {self.tok.describe()}")
        if self.at_keyword("BETWEEN"):
            self.advance()
            low = self.value(attr)
            self.expect_keyword("AND")
            high = self.value(attr)
            if not negated:
                return Between(attr, low, high)
            # NOT BETWEEN: outside the range, or no value at all (Elasticsearch's must_not).
            outside: tuple[Expr, ...] = (Compare(attr, "<", low), Compare(attr, ">", high))
            return Or((IsNull(attr), *outside))
        if self.at_keyword("IN"):
            self.advance()
            self.expect_punct("(")
            values = [self.value(attr)]
            while self.tok.kind == "punct" and self.tok.text == ",":
                self.advance()
                values.append(self.value(attr))
            self.expect_punct(")")
            return In(attr, tuple(values), negated)
        op_tok = self.advance()
        if op_tok.kind != "op":
            raise _error(f"expected an operator after {attr.name} but found {op_tok.describe()}")
        op = "!=" if op_tok.text == "<>" else op_tok.text
        if self.at_keyword("MISSING", "NULL"):
            word = self.advance()
            if op not in ("=", "!="):
                raise _error(f"{word.text} at position {word.pos} can only be compared with = or !=")
            return IsNull(attr, negated=op == "!=")
        return Compare(attr, op, self.value(attr))

    def order_term(self) -> OrderBy:
        pos = self.tok.pos
        attr = self.attribute()
        if attr.type is AttrType.STRING:
            raise _error(
                f"cannot ORDER BY {attr.name} at position {pos}: it is a full-text (string) attribute"
            )
        descending = False
        if self.at_keyword("ASC", "DESC"):
            descending = self.advance().keyword == "DESC"
        return OrderBy(attr, descending)

    # --- values --------------------------------------------------------------------------------

    def value(self, attr: Attr) -> object:
        tok = self.advance()
        if tok.kind == "string":
            raw: object = _unquote(tok)
        elif tok.kind == "number":
            raw = tok.text
        elif tok.keyword in ("TRUE", "FALSE"):
            raw = tok.keyword == "TRUE"
        else:
            raise _error(f"expected a value for {attr.name} but found {tok.describe()}")
        try:
            return _convert(attr, raw)
        except ValueError as e:
            raise _error(f"{attr.name} {e}, got {tok.describe()}") from None


def _convert(attr: Attr, raw: object) -> object:
    """A literal (str text, number text, or bool) as the typed AST value of `attr`."""
    if attr.name == "CloseStatus" and not attr.custom:
        return _close_status(raw)
    t = attr.type
    if t in (AttrType.STRING, AttrType.KEYWORD):
        if isinstance(raw, bool):
            raise ValueError(f"is a {t.value}: it expects a quoted string")
        return str(raw)
    if t is AttrType.BOOL:
        if isinstance(raw, bool):
            return raw
        if isinstance(raw, str) and raw.lower() in ("true", "false"):
            return raw.lower() == "true"
        raise ValueError("is a bool: it expects true or false")
    if isinstance(raw, bool):
        raise ValueError(f"is a {t.value}: it does not take true/false")
    text = str(raw).strip()
    if t is AttrType.INT:
        if re.fullmatch(r"-?\d+", text):
            return int(text)
        raise ValueError("is an int: it expects an integer")
    if t is AttrType.DOUBLE:
        try:
            return float(text)
        except ValueError:
            raise ValueError("is a double: it expects a number") from None
    # DATETIME: epoch nanoseconds or RFC 3339.
    if re.fullmatch(r"-?\d+", text):
        return int(text)
    try:
        return parse_datetime(text)
    except ValueError:
        raise ValueError("is a time: it expects an RFC 3339 string or epoch nanoseconds") from None


def _close_status(raw: object) -> int:
    if isinstance(raw, bool):
        raise ValueError("expects a close status name or Cadence's integer 0..5")
    text = str(raw).strip()
    if re.fullmatch(r"-?\d+", text):
        status = _CADENCE_CLOSE_STATUS_INTS.get(int(text))
        if status is None:
            raise ValueError("integer must be Cadence's 0 (COMPLETED) .. 5 (TIMED_OUT)")
        return int(status)
    key = text.upper().replace("_", "")
    key = key.removeprefix("WORKFLOWEXECUTIONCLOSESTATUS")
    status = _CLOSE_STATUS_NAMES.get(key)
    if status is None:
        raise ValueError(
            "expects one of COMPLETED, FAILED, CANCELED, TERMINATED, CONTINUED_AS_NEW, TIMED_OUT"
        )
    return int(status)


def parse_query(text: str, registry: SearchAttributeRegistry) -> VisibilityQuery:
    """Parse a query (empty text: everything, default order). BadRequestError on any error."""
    if len(text) > MAX_QUERY_LENGTH:
        raise _error(f"the query is longer than {MAX_QUERY_LENGTH} characters")
    return _Parser(text, registry).query()
