"""Store URLs of the Cassandra adapter.

    cassandra://[user[:password]@]host1[:port][,host2[:port]...]/keyspace[?option=value&...]

Options:
- ``replication_factor`` (default 1): the keyspace's replication factor when
  `cadence-fast schema setup` creates it.
- ``datacenter``: the local data center. Given, the keyspace is created with
  NetworkTopologyStrategy (``{datacenter: replication_factor}``) and the driver routes
  to that data center first (LOCAL_QUORUM / LOCAL_SERIAL are local to it). Absent,
  SimpleStrategy and the data center of the first contact point.
- ``timeout`` (seconds, default 10): the per-request timeout.
- ``connect_timeout`` (seconds, default 5).
- ``visibility_scan_limit`` (default 10000): visibility queries outside the indexed shapes
  (custom search attributes, OR, IN, ...) are evaluated over a scan of the domain's runs
  when it has at most this many; 0 refuses them all (see `visibility_scan.py`).

The port defaults to 9042 (the native protocol).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import parse_qsl, unquote, urlsplit

from cadence_fast.persistence.errors import StoreError

DEFAULT_PORT = 9042
OPTIONS = ("replication_factor", "datacenter", "timeout", "connect_timeout", "visibility_scan_limit")
#: Keyspace names as unquoted CQL identifiers: a letter, then letters, digits, underscores; at
#: most 48. CQL folds them to lower case, so the URL's name is taken in lower case too.
_KEYSPACE = re.compile(r"^[a-z][a-z0-9_]{0,47}$")
_DATACENTER = re.compile(r"^[A-Za-z0-9_.\-]{1,128}$")


@dataclass(frozen=True, slots=True)
class CassandraURL:
    hosts: tuple[tuple[str, int], ...]
    keyspace: str
    username: str | None = None
    password: str | None = None
    replication_factor: int = 1
    datacenter: str | None = None
    timeout: float = 10.0
    connect_timeout: float = 5.0
    visibility_scan_limit: int = 10_000

    def replication(self) -> str:
        """The CQL replication map for CREATE KEYSPACE."""
        if self.datacenter:
            return f"{{'class': 'NetworkTopologyStrategy', '{self.datacenter}': {self.replication_factor}}}"
        return f"{{'class': 'SimpleStrategy', 'replication_factor': {self.replication_factor}}}"

    def redacted(self) -> str:
        """The URL for messages: no password."""
        auth = (
            f"{self.username}:***@"
            if self.password is not None
            else (f"{self.username}@" if self.username else "")
        )
        hosts = ",".join(h if p == DEFAULT_PORT else f"{h}:{p}" for h, p in self.hosts)
        return f"cassandra://{auth}{hosts}/{self.keyspace}"


def _bad(url: str, why: str) -> StoreError:
    shown = re.sub(r"(//[^:/@]*:)[^@/]*@", r"\1***@", url)
    return StoreError(f"invalid Cassandra store URL {shown!r}: {why}")


def _host(url: str, text: str) -> tuple[str, int]:
    text = text.strip()
    if not text:
        raise _bad(url, "empty host in the host list")
    if text.startswith("["):  # [IPv6]:port
        end = text.find("]")
        if end < 0:
            raise _bad(url, f"unclosed '[' in host {text!r}")
        host, rest = text[1:end], text[end + 1 :]
        port_text = rest[1:] if rest.startswith(":") else ("" if not rest else None)
        if port_text is None:
            raise _bad(url, f"unexpected {rest!r} after host {host!r}")
    elif text.count(":") == 1:
        host, port_text = text.split(":")
    else:
        host, port_text = text, ""
    if not host:
        raise _bad(url, f"empty host name in {text!r}")
    if not port_text:
        return host, DEFAULT_PORT
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise _bad(url, f"port {port_text!r} of host {host!r} is not a number in 1..65535")
    return host, int(port_text)


def parse_url(url: str) -> CassandraURL:
    """Parse and check a cassandra:// URL; StoreError names what is wrong."""
    parts = urlsplit(url)
    if parts.scheme.lower() != "cassandra":
        raise _bad(url, "the scheme must be cassandra://")
    netloc = parts.netloc
    username = password = None
    if "@" in netloc:
        auth, netloc = netloc.rsplit("@", 1)
        user_text, sep, pass_text = auth.partition(":")
        username = unquote(user_text)
        password = unquote(pass_text) if sep else None
        if not username:
            raise _bad(url, "empty user name before '@'")
    if not netloc:
        raise _bad(url, "no host (cassandra://host1,host2/keyspace)")
    hosts = tuple(_host(url, h) for h in netloc.split(","))
    keyspace = unquote(parts.path.lstrip("/")).lower()
    if not keyspace:
        raise _bad(url, "no keyspace (cassandra://host1,host2/KEYSPACE)")
    if not _KEYSPACE.match(keyspace):
        raise _bad(
            url, f"keyspace {keyspace!r} must be a letter then up to 47 letters, digits or underscores"
        )
    values: dict[str, str] = {}
    for name, value in parse_qsl(parts.query, keep_blank_values=True):
        if name not in OPTIONS:
            raise _bad(url, f"unknown option {name!r} (known: {', '.join(OPTIONS)})")
        values[name] = value
    rf_text = values.get("replication_factor", "1")
    if not rf_text.isdigit() or int(rf_text) < 1:
        raise _bad(url, f"replication_factor={rf_text!r} must be a positive integer")
    datacenter = values.get("datacenter") or None
    if datacenter is not None and not _DATACENTER.match(datacenter):
        raise _bad(url, f"datacenter={datacenter!r} is not a data center name")
    timeouts: dict[str, float] = {}
    for name, default in (("timeout", 10.0), ("connect_timeout", 5.0)):
        text = values.get(name)
        try:
            timeouts[name] = default if text is None else float(text)
        except ValueError:
            raise _bad(url, f"{name}={text!r} must be a number of seconds") from None
        if not timeouts[name] > 0:
            raise _bad(url, f"{name}={text!r} must be positive")
    scan_text = values.get("visibility_scan_limit", "10000")
    if not scan_text.isdigit():
        raise _bad(url, f"visibility_scan_limit={scan_text!r} must be a non-negative integer")
    return CassandraURL(
        hosts=hosts,
        keyspace=keyspace,
        username=username,
        password=password,
        replication_factor=int(rf_text),
        datacenter=datacenter,
        timeout=timeouts["timeout"],
        connect_timeout=timeouts["connect_timeout"],
        visibility_scan_limit=int(scan_text),
    )
