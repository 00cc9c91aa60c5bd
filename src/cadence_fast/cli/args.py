"""What the operator commands (`workflow`, `tasklist`; `domain` for its stub) share: the domain
flag, parsing what the user typed into request fields (errors name the flag), and calling the
frontend.

Protobuf and the generated stubs are imported by the functions that build requests, not
here: registering the commands' flags must stay cheap (see cli.common).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import socket
import time
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from cadence_fast.cli.common import DEFAULT_ADDRESS, CliError, add_address, add_json, channel

if TYPE_CHECKING:
    from cadence.api.v1 import (
        common_pb2,
        service_domain_pb2_grpc,
        service_visibility_pb2_grpc,
        service_workflow_pb2_grpc,
    )
    from google.protobuf.duration_pb2 import Duration
    from google.protobuf.timestamp_pb2 import Timestamp

DOMAIN_ENV = "CADENCE_CLI_DOMAIN"


def identity() -> str:
    return f"cadence-fast-cli@{socket.gethostname()}"


# --------------------------------------------------------------------------------------------
# Flags


def add_group_flags(group: argparse.ArgumentParser) -> None:
    """--domain and --address given right after the group (`workflow --domain D list`), as the
    Go CLI's global flags. Own dests: a subcommand's defaults would overwrite shared ones."""
    add_domain(group, dest="group_domain")
    group.add_argument(
        "--address", dest="group_address", default=None, metavar="ADDRESS", help="frontend gRPC address host:port"
    )


def add_domain(parser: argparse.ArgumentParser, dest: str = "domain") -> None:
    parser.add_argument(
        "--domain", "--do", "-d", dest=dest, default=None, metavar="DOMAIN",
        help=f"domain of the workflows (env {DOMAIN_ENV})",
    )


def resolve_domain(args: argparse.Namespace) -> str:
    # The group-level flag has its own dest: a subcommand's default would overwrite it otherwise.
    domain = getattr(args, "domain", None) or getattr(args, "group_domain", None) or os.environ.get(DOMAIN_ENV)
    if not domain:
        raise CliError(f"a domain is required: give --domain or set {DOMAIN_ENV}")
    return str(domain)


def leaf(
    gsub: argparse._SubParsersAction, name: str, help: str, aliases: Sequence[str] = ()
) -> argparse.ArgumentParser:
    """A subcommand with the flags every operator command has: --address, --domain, --json."""
    p: argparse.ArgumentParser = gsub.add_parser(name, help=help, aliases=list(aliases), description=help)
    add_address(p)
    add_domain(p)
    add_json(p)
    return p


def add_input(
    parser: argparse.ArgumentParser, flag: str = "--input", alias: str = "-i", dest: str = "input", file_alias: str = "--if"
) -> None:
    parser.add_argument(flag, alias, dest=dest, help="JSON value(s), several separated by spaces")
    parser.add_argument(f"{flag}_file", file_alias, dest=f"{dest}_file", help=f"read {flag} from this file")


# --------------------------------------------------------------------------------------------
# Parsing what the user typed; errors name the flag


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, None: 1}


def parse_seconds(text: str | None, flag: str, required: bool = False, positive: bool = True) -> float | None:
    if text is None or text == "":
        if required:
            raise CliError(f"{flag} is required")
        return None
    m = _DURATION.match(str(text))
    if not m:
        raise CliError(f"{flag}: {text!r} is not a duration (seconds, or a number with ms/s/m/h/d)")
    seconds = float(m.group(1)) * _UNIT_SECONDS[m.group(2)]
    if positive and seconds <= 0:
        raise CliError(f"{flag} must be greater than 0")
    return seconds


def duration(seconds: float) -> Duration:
    from google.protobuf.duration_pb2 import Duration

    d = Duration()
    d.FromNanoseconds(int(round(seconds * 1e9)))
    return d


def parse_json_values(text: str, flag: str) -> bytes:
    """Validate one or more JSON values separated by whitespace; send the text as given."""
    decoder = json.JSONDecoder()
    i, n = 0, len(text)
    while True:
        while i < n and text[i].isspace():
            i += 1
        if i >= n:
            break
        try:
            _, i = decoder.raw_decode(text, i)
        except json.JSONDecodeError as e:
            raise CliError(f"{flag}: not valid JSON ({e.msg} at column {e.colno}): {text!r}") from None
    return text.strip().encode("utf-8")


def read_input(args: argparse.Namespace, dest: str = "input", flag: str = "--input") -> common_pb2.Payload | None:
    from cadence.api.v1 import common_pb2

    text = getattr(args, dest, None)
    path = getattr(args, f"{dest}_file", None)
    if text is not None and path:
        raise CliError(f"give {flag} or {flag}_file, not both")
    if path:
        try:
            with open(path, encoding="utf-8") as f:
                text = f.read()
        except OSError as e:
            raise CliError(f"{flag}_file: cannot read {path}: {e.strerror or e}") from None
        flag = f"{flag}_file"
    if text is None or text.strip() == "":
        return None
    return common_pb2.Payload(data=parse_json_values(text, flag))


def parse_key_values(items: Iterable[str], flag: str) -> dict[str, common_pb2.Payload]:
    from cadence.api.v1 import common_pb2

    out: dict[str, common_pb2.Payload] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise CliError(f"{flag}: expected KEY=JSON, got {item!r}")
        out[key.strip()] = common_pb2.Payload(data=parse_json_values(value, f"{flag} {key.strip()}"))
    return out


def parse_time(text: str, flag: str) -> Timestamp:
    """RFC 3339 (`2024-01-02T03:04:05Z`), epoch nanoseconds, or a duration back from now (`15m`, `2d`)."""
    from google.protobuf.timestamp_pb2 import Timestamp

    ts = Timestamp()
    text = text.strip()
    if text.isdigit() and len(text) > 12:
        ts.FromNanoseconds(int(text))
        return ts
    m = _DURATION.match(text)
    if m:
        ago = float(m.group(1)) * _UNIT_SECONDS[m.group(2)]
        ts.FromNanoseconds(time.time_ns() - int(ago * 1e9))
        return ts
    try:
        t = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise CliError(f"{flag}: {text!r} is not a time (RFC 3339, epoch nanoseconds, or a duration ago like 2h)") from None
    if t.tzinfo is None:
        t = t.replace(tzinfo=dt.UTC)
    ts.FromDatetime(t)
    return ts


def parse_choice(text: str | None, table: dict[str, Any], flag: str) -> Any:
    if text is None:
        return None
    key = text.strip().lower()
    if key not in table:
        names = ", ".join(k for k in table if not k.isdigit())
        raise CliError(f"{flag}: unknown value {text!r} (one of: {names})")
    return table[key]


def require(value: str | None, flag: str) -> str:
    if not value:
        raise CliError(f"{flag} is required")
    return value


# --------------------------------------------------------------------------------------------
# Calling the frontend


def server_address(args: argparse.Namespace) -> str:
    """--address after the subcommand, else after the group, else the environment / default."""
    leaf_default = os.environ.get("CADENCE_FAST_ADDRESS", DEFAULT_ADDRESS)
    group = getattr(args, "group_address", None)
    if group and args.address == leaf_default:
        return str(group)
    return str(args.address)


def domain_api(args: argparse.Namespace) -> service_domain_pb2_grpc.DomainAPIStub:
    from cadence.api.v1 import service_domain_pb2_grpc

    return service_domain_pb2_grpc.DomainAPIStub(channel(server_address(args)))


def workflow_api(args: argparse.Namespace) -> service_workflow_pb2_grpc.WorkflowAPIStub:
    from cadence.api.v1 import service_workflow_pb2_grpc

    return service_workflow_pb2_grpc.WorkflowAPIStub(channel(server_address(args)))


def visibility_api(args: argparse.Namespace) -> service_visibility_pb2_grpc.VisibilityAPIStub:
    from cadence.api.v1 import service_visibility_pb2_grpc

    return service_visibility_pb2_grpc.VisibilityAPIStub(channel(server_address(args)))

