"""Cadence's visibility query language: each operator and attribute, and malformed input.

The parser's output is the typed AST the stores compile; these tables pin it down.
Compiled execution on real databases is tests/visibility/test_sql_compiler.py.
"""

from __future__ import annotations

import pytest

from cadence_fast.errors import BadRequestError
from cadence_fast.persistence.records import CloseStatus
from cadence_fast.persistence.visibility_query import (
    And,
    Attr,
    AttrType,
    Between,
    Compare,
    In,
    IsNull,
    Or,
    OrderBy,
    VisibilityQuery,
    attr,
)
from cadence_fast.visibility.query import parse_query
from cadence_fast.visibility.search_attributes import SearchAttributeRegistry

REGISTRY = SearchAttributeRegistry({"Env": "keyword", "Priority": "int", "Due": "datetime"})
T0 = 1_704_067_200_000_000_000  # 2024-01-01T00:00:00Z


def custom(name: str) -> Attr:
    a = REGISTRY.custom(name)
    assert a is not None
    return a


WID, WTYPE, ST, CT, CS = (
    attr(n) for n in ("WorkflowID", "WorkflowType", "StartTime", "CloseTime", "CloseStatus")
)

PARSES: list[tuple[str, VisibilityQuery]] = [
    ("", VisibilityQuery()),
    ("   ", VisibilityQuery()),
    # Every system attribute, with a value of its type.
    ("WorkflowID = 'a'", VisibilityQuery(Compare(WID, "=", "a"))),
    ('WorkflowID = "a b"', VisibilityQuery(Compare(WID, "=", "a b"))),
    ("RunID = 'r'", VisibilityQuery(Compare(attr("RunID"), "=", "r"))),
    ("WorkflowType = 'T'", VisibilityQuery(Compare(WTYPE, "=", "T"))),
    ("TaskList = 'tl'", VisibilityQuery(Compare(attr("TaskList"), "=", "tl"))),
    ("HistoryLength > 10", VisibilityQuery(Compare(attr("HistoryLength"), ">", 10))),
    ("IsCron = true", VisibilityQuery(Compare(attr("IsCron"), "=", True))),
    ("IsCron = FALSE", VisibilityQuery(Compare(attr("IsCron"), "=", False))),
    ("IsCron = 'true'", VisibilityQuery(Compare(attr("IsCron"), "=", True))),
    ("StartTime >= '2024-01-01T00:00:00Z'", VisibilityQuery(Compare(ST, ">=", T0))),
    ("StartTime < '2024-01-01T01:00:00.5+01:00'", VisibilityQuery(Compare(ST, "<", T0 + 500_000_000))),
    ("StartTime <= '2024-01-01T00:00:00.123456789Z'", VisibilityQuery(Compare(ST, "<=", T0 + 123_456_789))),
    (f"StartTime > {T0}", VisibilityQuery(Compare(ST, ">", T0))),
    (f"StartTime > '{T0}'", VisibilityQuery(Compare(ST, ">", T0))),
    ("ExecutionTime > '2024-01-01'", VisibilityQuery(Compare(attr("ExecutionTime"), ">", T0))),
    ("CloseTime < '2024-01-01T00:00:00Z'", VisibilityQuery(Compare(CT, "<", T0))),
    ("UpdateTime > 5", VisibilityQuery(Compare(attr("UpdateTime"), ">", 5))),
    # CloseStatus: names in any case/spelling, or Cadence's integers (0 = COMPLETED).
    ("CloseStatus = 'COMPLETED'", VisibilityQuery(Compare(CS, "=", CloseStatus.COMPLETED))),
    ("CloseStatus = 'Completed'", VisibilityQuery(Compare(CS, "=", CloseStatus.COMPLETED))),
    ("CloseStatus = 'continued_as_new'", VisibilityQuery(Compare(CS, "=", CloseStatus.CONTINUED_AS_NEW))),
    ("CloseStatus = 'ContinuedAsNew'", VisibilityQuery(Compare(CS, "=", CloseStatus.CONTINUED_AS_NEW))),
    ("CloseStatus = 'TimedOut'", VisibilityQuery(Compare(CS, "=", CloseStatus.TIMED_OUT))),
    ("CloseStatus = 'cancelled'", VisibilityQuery(Compare(CS, "=", CloseStatus.CANCELED))),
    (
        "CloseStatus = 'WORKFLOW_EXECUTION_CLOSE_STATUS_TERMINATED'",
        VisibilityQuery(Compare(CS, "=", CloseStatus.TERMINATED)),
    ),
    ("CloseStatus = 0", VisibilityQuery(Compare(CS, "=", CloseStatus.COMPLETED))),
    ("CloseStatus = 5", VisibilityQuery(Compare(CS, "=", CloseStatus.TIMED_OUT))),
    ("CloseStatus = '3'", VisibilityQuery(Compare(CS, "=", CloseStatus.TERMINATED))),
    # Every comparison operator.
    ("HistoryLength != 1", VisibilityQuery(Compare(attr("HistoryLength"), "!=", 1))),
    ("HistoryLength <> 1", VisibilityQuery(Compare(attr("HistoryLength"), "!=", 1))),
    ("HistoryLength >= -1", VisibilityQuery(Compare(attr("HistoryLength"), ">=", -1))),
    ("HistoryLength <= 1", VisibilityQuery(Compare(attr("HistoryLength"), "<=", 1))),
    ("HistoryLength < 1", VisibilityQuery(Compare(attr("HistoryLength"), "<", 1))),
    # missing / IS NULL
    ("CloseTime = missing", VisibilityQuery(IsNull(CT))),
    ("CloseTime = MISSING", VisibilityQuery(IsNull(CT))),
    ("CloseTime != missing", VisibilityQuery(IsNull(CT, negated=True))),
    ("CloseTime is null", VisibilityQuery(IsNull(CT))),
    ("CloseTime IS NOT NULL", VisibilityQuery(IsNull(CT, negated=True))),
    # BETWEEN, IN, NOT forms
    ("StartTime BETWEEN 1 AND 2", VisibilityQuery(Between(ST, 1, 2))),
    (
        "StartTime NOT BETWEEN 1 AND 2",
        VisibilityQuery(Or((IsNull(ST), Compare(ST, "<", 1), Compare(ST, ">", 2)))),
    ),
    ("WorkflowType IN ('a', \"b\")", VisibilityQuery(In(WTYPE, ("a", "b")))),
    ("WorkflowType not in ('a')", VisibilityQuery(In(WTYPE, ("a",), negated=True))),
    ("CloseStatus IN ('failed', 3)", VisibilityQuery(In(CS, (CloseStatus.FAILED, CloseStatus.TERMINATED)))),
    # Custom attributes: defaults and configured ones.
    ("CustomKeywordField = 'k'", VisibilityQuery(Compare(custom("CustomKeywordField"), "=", "k"))),
    (
        "CustomStringField = 'some text'",
        VisibilityQuery(Compare(custom("CustomStringField"), "=", "some text")),
    ),
    ("CustomIntField = 3", VisibilityQuery(Compare(custom("CustomIntField"), "=", 3))),
    ("CustomDoubleField > 1.5e2", VisibilityQuery(Compare(custom("CustomDoubleField"), ">", 150.0))),
    ("CustomDoubleField > 2", VisibilityQuery(Compare(custom("CustomDoubleField"), ">", 2.0))),
    ("CustomBoolField = true", VisibilityQuery(Compare(custom("CustomBoolField"), "=", True))),
    (
        "CustomDatetimeField < '2024-01-01T00:00:00Z'",
        VisibilityQuery(Compare(custom("CustomDatetimeField"), "<", T0)),
    ),
    ("CadenceChangeVersion = 'id-1'", VisibilityQuery(Compare(custom("CadenceChangeVersion"), "=", "id-1"))),
    ("BinaryChecksums = 'abc'", VisibilityQuery(Compare(custom("BinaryChecksums"), "=", "abc"))),
    ("Env = 'prod'", VisibilityQuery(Compare(custom("Env"), "=", "prod"))),
    ("`Env` = 'prod'", VisibilityQuery(Compare(custom("Env"), "=", "prod"))),
    ("Priority IN (1, 2)", VisibilityQuery(In(custom("Priority"), (1, 2)))),
    ("Due = missing", VisibilityQuery(IsNull(custom("Due")))),
    # Strings: escapes and doubled quotes are data.
    ("WorkflowID = 'it''s'", VisibilityQuery(Compare(WID, "=", "it's"))),
    ("WorkflowID = 'it\\'s'", VisibilityQuery(Compare(WID, "=", "it's"))),
    ('WorkflowID = "say ""hi"""', VisibilityQuery(Compare(WID, "=", 'say "hi"'))),
    ("WorkflowID = 'unicode-ü-😀'", VisibilityQuery(Compare(WID, "=", "unicode-ü-😀"))),
    ("WorkflowID = 42", VisibilityQuery(Compare(WID, "=", "42"))),
    # AND binds tighter than OR; parentheses; keywords in any case.
    (
        "WorkflowID = 'a' or WorkflowID = 'b' AND WorkflowType = 'T'",
        VisibilityQuery(
            Or((Compare(WID, "=", "a"), And((Compare(WID, "=", "b"), Compare(WTYPE, "=", "T")))))
        ),
    ),
    (
        "(WorkflowID = 'a' OR WorkflowID = 'b') and WorkflowType = 'T'",
        VisibilityQuery(
            And((Or((Compare(WID, "=", "a"), Compare(WID, "=", "b"))), Compare(WTYPE, "=", "T")))
        ),
    ),
    (
        "WorkflowType='T'AND(CloseTime=missing)",
        VisibilityQuery(And((Compare(WTYPE, "=", "T"), IsNull(CT)))),
    ),
    # ORDER BY
    ("ORDER BY StartTime", VisibilityQuery(None, (OrderBy(ST, descending=False),))),
    ("order by StartTime desc", VisibilityQuery(None, (OrderBy(ST, descending=True),))),
    (
        "WorkflowType = 'T' ORDER BY CloseTime DESC, WorkflowID ASC",
        VisibilityQuery(Compare(WTYPE, "=", "T"), (OrderBy(CT, True), OrderBy(WID, False))),
    ),
    ("ORDER BY Priority DESC", VisibilityQuery(None, (OrderBy(custom("Priority"), True),))),
]


@pytest.mark.parametrize(("text", "expected"), PARSES, ids=[p[0] or "<empty>" for p in PARSES])
def test_parse(text: str, expected: VisibilityQuery) -> None:
    assert parse_query(text, REGISTRY) == expected


#: Malformed input -> a BadRequestError whose message names the problem (regex).
ERRORS: list[tuple[str, str]] = [
    ("Foo = 'x'", r"unknown search attribute 'Foo' at position 1"),
    ("workflowid = 'x'", r"unknown search attribute 'workflowid' .*did you mean 'WorkflowID'"),
    ("WorkflowType = 'a' AND Bar > 1", r"unknown search attribute 'Bar' at position 24"),
    ("DomainID = 'x'", r"DomainID .* cannot be queried"),
    ("WorkflowID", r"expected an operator after WorkflowID but found end of query"),
    ("WorkflowID =", r"expected a value for WorkflowID but found end of query"),
    ("WorkflowID = 'x", r"unterminated string starting at position 14"),
    ('WorkflowID = "x', r"unterminated string"),
    ("WorkflowID == 'x'", r"expected a value for WorkflowID but found '=' at position 13"),
    ("WorkflowID = 'x' WorkflowType = 'y'", r"unexpected 'WorkflowType' at position 18"),
    ("WorkflowID = 'x' AND", r"expected a search attribute but found end of query"),
    ("WorkflowID = 'x' OR OR", r"expected a search attribute but found 'OR'"),
    ("(WorkflowID = 'x'", r"expected '\)' but found end of query"),
    ("WorkflowID = 'x')", r"unexpected '\)' at position 17"),
    ("WorkflowID ~ 'x'", r"unexpected character '~' at position 12"),
    ("WorkflowID = 'x'; DROP TABLE t", r"unexpected character ';'"),
    ("WorkflowID LIKE 'x%'", r"expected an operator after WorkflowID but found 'LIKE'"),
    ("WorkflowID IN ()", r"expected a value for WorkflowID but found '\)'"),
    ("WorkflowID IN 'a'", r"expected '\(' but found"),
    ("WorkflowID NOT = 'a'", r"expected IN or BETWEEN after NOT"),
    ("StartTime BETWEEN 1", r"expected AND but found end of query"),
    ("StartTime BETWEEN 1 OR 2", r"expected AND but found 'OR'"),
    ("StartTime > 'yesterday'", r"StartTime is a time: it expects an RFC 3339 string or epoch nanoseconds"),
    ("StartTime > '2024-13-01T00:00:00Z'", r"StartTime is a time"),
    ("StartTime > true", r"StartTime is a datetime: it does not take true/false"),
    ("CloseTime > missing", r"missing at position 13 can only be compared with = or !="),
    ("HistoryLength > 'many'", r"HistoryLength is an int: it expects an integer, got \"'many'\""),
    ("HistoryLength > 1.5", r"HistoryLength is an int"),
    ("IsCron = 1", r"IsCron is a bool: it expects true or false"),
    ("IsCron = 'yes'", r"IsCron is a bool"),
    ("WorkflowID = true", r"WorkflowID is a keyword: it expects a quoted string"),
    ("CloseStatus = 'DONE'", r"CloseStatus expects one of COMPLETED, FAILED"),
    ("CloseStatus = 6", r"CloseStatus integer must be Cadence's 0 \(COMPLETED\) .. 5 \(TIMED_OUT\)"),
    ("CloseStatus = true", r"CloseStatus expects a close status name"),
    ("CustomDoubleField = 'abc'", r"CustomDoubleField is a double: it expects a number"),
    ("CustomIntField IN (1, 'x')", r"CustomIntField is an int"),
    ("ORDER StartTime", r"expected BY but found 'StartTime'"),
    ("ORDER BY", r"expected a search attribute but found end of query"),
    ("ORDER BY StartTime sideways", r"unexpected 'sideways'"),
    ("ORDER BY CustomStringField", r"cannot ORDER BY CustomStringField .*full-text"),
    ("ORDER BY Nope", r"unknown search attribute 'Nope'"),
    ("WorkflowID = 'x' LIMIT 5", r"unexpected 'LIMIT'"),
    ("`Nope` = 1", r"unknown search attribute 'Nope'"),
    ("x" * 20000, r"longer than"),
]


@pytest.mark.parametrize(("text", "message"), ERRORS, ids=[e[0][:40] for e in ERRORS])
def test_malformed(text: str, message: str) -> None:
    with pytest.raises(BadRequestError, match=message) as info:
        parse_query(text, REGISTRY)
    assert info.value.message.startswith("invalid query: ")


def test_registry_keys_and_types() -> None:
    keys = REGISTRY.keys()
    for name in (
        "WorkflowID",
        "RunID",
        "WorkflowType",
        "StartTime",
        "CloseTime",
        "CloseStatus",
        "HistoryLength",
    ):
        assert name in keys
    assert keys["CustomKeywordField"] is AttrType.KEYWORD
    assert keys["CustomDatetimeField"] is AttrType.DATETIME
    assert keys["CadenceChangeVersion"] is AttrType.KEYWORD
    assert keys["Priority"] is AttrType.INT
    with pytest.raises(ValueError, match="system attribute"):
        SearchAttributeRegistry({"WorkflowID": "keyword"})
    with pytest.raises(ValueError, match="must match"):
        SearchAttributeRegistry({"bad name": "keyword"})
    with pytest.raises(ValueError, match="unknown type"):
        SearchAttributeRegistry({"Good": "blob"})
