"""Search attributes: which keys exist, their types, and their JSON payloads.

The registry holds Cadence's system attributes (read-only: the server sets them) and
the custom ones a workflow may upsert: the keys Cadence registers by default plus
`config.search_attributes` (name -> string|keyword|int|double|bool|datetime).

For the history engine (writing VisibilityRecord rows at start, on an
UpsertWorkflowSearchAttributes decision and at close)::

    registry = SearchAttributeRegistry.from_config(config)    # once
    values = decode_search_attributes(request.search_attributes, registry)
    record.search_attributes = {**old_values, **values}       # an upsert merges

`decode_search_attributes` validates every key and value and raises BadRequestError
naming the key (unknown key, a system key, a value of the wrong type). Stored values
are JSON-ready and index-friendly: datetimes become int nanoseconds, doubles floats,
keyword/string lists stay lists. `encode_search_attributes` turns stored values back
into the api.v1 message listings return (datetimes as RFC 3339 strings, as the Go
client marshals time.Time).
"""

from __future__ import annotations

import calendar
import json
import re
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from cadence.api.v1 import common_pb2, visibility_pb2

from cadence_fast.errors import BadRequestError
from cadence_fast.persistence.sqlvisibility import SAFE_NAME
from cadence_fast.persistence.visibility_query import SYSTEM_ATTRIBUTES, Attr, AttrType

if TYPE_CHECKING:
    from cadence_fast.config import ServerConfig

#: The custom attributes Cadence registers out of the box (frontend.validSearchAttributes).
DEFAULT_CUSTOM_ATTRIBUTES: dict[str, AttrType] = {
    "CustomStringField": AttrType.STRING,
    "CustomKeywordField": AttrType.KEYWORD,
    "CustomIntField": AttrType.INT,
    "CustomDoubleField": AttrType.DOUBLE,
    "CustomBoolField": AttrType.BOOL,
    "CustomDatetimeField": AttrType.DATETIME,
    "CadenceChangeVersion": AttrType.KEYWORD,
    "BinaryChecksums": AttrType.KEYWORD,
}

INDEXED_VALUE_TYPES: dict[AttrType, int] = {
    AttrType.STRING: visibility_pb2.INDEXED_VALUE_TYPE_STRING,
    AttrType.KEYWORD: visibility_pb2.INDEXED_VALUE_TYPE_KEYWORD,
    AttrType.INT: visibility_pb2.INDEXED_VALUE_TYPE_INT,
    AttrType.DOUBLE: visibility_pb2.INDEXED_VALUE_TYPE_DOUBLE,
    AttrType.BOOL: visibility_pb2.INDEXED_VALUE_TYPE_BOOL,
    AttrType.DATETIME: visibility_pb2.INDEXED_VALUE_TYPE_DATETIME,
}

#: System attributes a query may name (the domain comes from the request, never the query).
QUERYABLE_SYSTEM_ATTRIBUTES = tuple(n for n in SYSTEM_ATTRIBUTES if n != "DomainID")


class SearchAttributeRegistry:
    """Every search attribute this server knows, by exact (case-sensitive) name."""

    def __init__(self, custom: Mapping[str, str | AttrType] | None = None) -> None:
        self._custom: dict[str, Attr] = {
            n: Attr(n, t, custom=True) for n, t in DEFAULT_CUSTOM_ATTRIBUTES.items()
        }
        for name, typ in (custom or {}).items():
            if name in SYSTEM_ATTRIBUTES:
                raise ValueError(f"search attribute {name!r} is a Cadence system attribute")
            if not SAFE_NAME.match(name):
                raise ValueError(f"search attribute name {name!r} must match {SAFE_NAME.pattern}")
            try:
                attr_type = typ if isinstance(typ, AttrType) else AttrType(str(typ).lower())
            except ValueError:
                raise ValueError(f"search attribute {name!r} has unknown type {typ!r}") from None
            self._custom[name] = Attr(name, attr_type, custom=True)
        self._system: dict[str, Attr] = {
            n: Attr(n, SYSTEM_ATTRIBUTES[n][0]) for n in QUERYABLE_SYSTEM_ATTRIBUTES
        }

    @classmethod
    def from_config(cls, config: ServerConfig) -> SearchAttributeRegistry:
        return cls(config.search_attributes)

    def lookup(self, name: str) -> Attr | None:
        """A queryable attribute (system or custom) by exact name."""
        return self._system.get(name) or self._custom.get(name)

    def custom(self, name: str) -> Attr | None:
        return self._custom.get(name)

    def is_system(self, name: str) -> bool:
        return name in SYSTEM_ATTRIBUTES

    def suggest(self, name: str) -> str | None:
        """The registered name that differs from `name` only in case, if any."""
        low = name.lower()
        for known in (*SYSTEM_ATTRIBUTES, *self._custom):
            if known.lower() == low:
                return known
        return None

    def keys(self) -> dict[str, AttrType]:
        """All keys and types, as GetSearchAttributes reports them (system ones included)."""
        out = {n: t for n, (t, _) in SYSTEM_ATTRIBUTES.items()}
        out.update({n: a.type for n, a in self._custom.items()})
        return out


# --- values ---------------------------------------------------------------------------------

_RFC3339 = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})(?:[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?)?"
    r"\s*([Zz]|[+-]\d{2}:?\d{2})?$"
)


_EPOCH = datetime(1970, 1, 1)


def parse_datetime(text: str) -> int:
    """RFC 3339 (or a plain date, or a timestamp without offset, taken as UTC) -> ns since epoch.

    Exact to the nanosecond (Go's RFC3339Nano), which datetime.fromisoformat is not.
    """
    m = _RFC3339.match(text.strip())
    if not m:
        raise ValueError(f"{text!r} is not an RFC 3339 time")
    year, month, day, hour, minute, second, frac, offset = m.groups()
    try:
        dt = datetime(int(year), int(month), int(day), int(hour or 0), int(minute or 0), int(second or 0))
    except ValueError as e:
        raise ValueError(f"{text!r} is not a valid time: {e}") from None
    seconds = calendar.timegm(dt.timetuple())
    if offset and offset not in ("Z", "z"):
        sign = 1 if offset[0] == "+" else -1
        digits = offset[1:].replace(":", "")
        seconds -= sign * (int(digits[:2]) * 3600 + int(digits[2:]) * 60)
    nanos = int((frac or "0").ljust(9, "0"))
    return seconds * 1_000_000_000 + nanos


def format_datetime(ns: int) -> str:
    """ns since epoch -> RFC 3339 in UTC, fraction trimmed as Go's RFC3339Nano does."""
    seconds, nanos = divmod(int(ns), 1_000_000_000)
    text = (_EPOCH + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%S")
    if nanos:
        text += "." + f"{nanos:09d}".rstrip("0")
    return text + "Z"


def coerce_value(attr: Attr, value: object, *, allow_list: bool) -> object:
    """A JSON-decoded value checked against the attribute's type, normalized for storage.

    Raises ValueError with a short reason (callers wrap it into a BadRequestError).
    """
    t = attr.type
    if t in (AttrType.STRING, AttrType.KEYWORD):
        if isinstance(value, str):
            return value
        if allow_list and isinstance(value, list) and all(isinstance(v, str) for v in value):
            return list(value)
        raise ValueError(f"expects a {t.value} (a string{' or a list of strings' if allow_list else ''})")
    if t is AttrType.INT:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise ValueError("expects an int")
    if t is AttrType.DOUBLE:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        raise ValueError("expects a double")
    if t is AttrType.BOOL:
        if isinstance(value, bool):
            return value
        raise ValueError("expects a bool")
    # DATETIME: the Go client sends RFC 3339 strings; epoch nanoseconds are accepted too.
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        return parse_datetime(value)
    raise ValueError("expects a datetime (an RFC 3339 string or epoch nanoseconds)")


def decode_search_attributes(
    sa: common_pb2.SearchAttributes | None, registry: SearchAttributeRegistry
) -> dict[str, object]:
    """api.v1 SearchAttributes -> {name: value} for VisibilityRecord.search_attributes.

    BadRequestError (naming the key) for an unknown key, a system key, a payload that is
    not JSON, or a value of the wrong type.
    """
    out: dict[str, object] = {}
    if sa is None:
        return out
    for key, payload in sa.indexed_fields.items():
        if registry.is_system(key):
            raise BadRequestError(f"search attribute {key!r} is a read-only Cadence system attribute")
        attr = registry.custom(key)
        if attr is None:
            hint = registry.suggest(key)
            raise BadRequestError(
                f"search attribute {key!r} is not registered" + (f" (did you mean {hint!r}?)" if hint else "")
            )
        try:
            raw = json.loads(payload.data) if payload.data else None
        except (ValueError, UnicodeDecodeError):
            raise BadRequestError(f"search attribute {key!r}: the value is not valid JSON") from None
        if raw is None:
            raise BadRequestError(f"search attribute {key!r}: the value is empty (null)")
        try:
            out[key] = coerce_value(attr, raw, allow_list=True)
        except ValueError as e:
            raise BadRequestError(
                f"search attribute {key!r} of type {attr.type.value} {e}, got {raw!r}"
            ) from None
    return out


def encode_search_attributes(
    values: Mapping[str, object], registry: SearchAttributeRegistry
) -> common_pb2.SearchAttributes:
    """Stored {name: value} -> api.v1 SearchAttributes (JSON payloads, datetimes as RFC 3339)."""
    sa = common_pb2.SearchAttributes()
    for key, value in values.items():
        attr = registry.custom(key)
        if attr is not None and attr.type is AttrType.DATETIME and isinstance(value, int):
            value = format_datetime(value)
        sa.indexed_fields[key].data = json.dumps(value, separators=(",", ":")).encode()
    return sa


def visibility_values(
    data: bytes | common_pb2.SearchAttributes | None, registry: SearchAttributeRegistry
) -> dict[str, object]:
    """Search attributes as a visibility row stores them, never raising (for the engine's commits).

    `data` is the run's SearchAttributes (serialized or not) as accepted earlier. Values of
    registered attributes are normalized as `decode_search_attributes` does (datetimes to
    int ns, so range queries compare numbers); a value that does not fit its type is left
    out of the row (it could never match a typed query); keys not registered are kept
    as decoded JSON (listed back, never queryable). Validation with a BadRequestError
    belongs where the attributes enter: `decode_search_attributes`.
    """
    if not data:
        return {}
    sa = common_pb2.SearchAttributes.FromString(data) if isinstance(data, bytes) else data
    out: dict[str, object] = {}
    for key, payload in sa.indexed_fields.items():
        try:
            raw = json.loads(payload.data)
        except (ValueError, UnicodeDecodeError):
            continue
        attr = registry.custom(key)
        if attr is None:
            if raw is not None and not registry.is_system(key):
                out[key] = raw
            continue
        try:
            out[key] = coerce_value(attr, raw, allow_list=True)
        except ValueError:
            continue
    return out
