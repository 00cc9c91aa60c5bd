"""What the client-side commands share: the server address, output, errors.

gRPC and protobuf are imported inside the functions that use them: every `cadence-fast`
call builds the whole parser, and `--help` or a flag error should not pay for them.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import grpc
    from google.protobuf.message import Message

DEFAULT_ADDRESS = "127.0.0.1:7833"
CALL_METADATA = (
    ("rpc-service", "cadence-frontend"),
    ("rpc-caller", "cadence-fast-cli"),
    ("rpc-encoding", "proto"),
    ("cadence-caller-type", "cli"),
)


def add_address(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--address",
        default=os.environ.get("CADENCE_FAST_ADDRESS", DEFAULT_ADDRESS),
        help="frontend gRPC address host:port (env CADENCE_FAST_ADDRESS; default %(default)s)",
    )


def add_json(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print JSON for scripts")


def channel(address: str) -> grpc.Channel:
    import grpc

    return grpc.insecure_channel(address, options=[("grpc.max_receive_message_length", 32 * 1024 * 1024)])


#: Deadline of an ordinary call (long polls set their own).
CALL_SECONDS = 30.0


def call(method: Callable[..., Any], request: Any, timeout: float = CALL_SECONDS) -> Any:
    """One unary call of a generated stub, with the caller metadata Cadence frontends expect."""
    return method(request, timeout=timeout, metadata=CALL_METADATA)


class CliError(Exception):
    """A message for the user; the command exits 1."""


def describe_rpc_error(e: grpc.RpcError) -> str:
    import grpc
    from grpc_status import rpc_status

    code = e.code() if hasattr(e, "code") else None
    details = e.details() if hasattr(e, "details") else str(e)
    kind = ""
    try:
        status = rpc_status.from_call(e)  # type: ignore[arg-type]
        if status is not None and status.details:
            kind = status.details[0].type_url.rsplit(".", 1)[-1] + ": "
    except ValueError:
        pass
    if code == grpc.StatusCode.UNAVAILABLE and "connect" in (details or "").lower():
        return f"cannot reach the server: {details}"
    name = code.name if code is not None else "ERROR"
    return f"{name}: {kind}{details}"


def run_command(fn: Callable[[argparse.Namespace], int | None]) -> Callable[[argparse.Namespace], int]:
    """Wrap a handler: RPC and user errors become one line on stderr and exit 1."""

    def handler(args: argparse.Namespace) -> int:
        import grpc

        try:
            return int(fn(args) or 0)
        except grpc.RpcError as e:
            print(f"cadence-fast: {describe_rpc_error(e)}", file=sys.stderr)
            return 1
        except CliError as e:
            print(f"cadence-fast: {e}", file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            return 130

    return handler


def to_dict(message: Message) -> dict[str, Any]:
    from google.protobuf import json_format

    return json_format.MessageToDict(message, preserving_proto_field_name=True)


def print_json(value: Any) -> None:
    from google.protobuf.message import Message

    if isinstance(value, Message):
        value = to_dict(value)
    print(json.dumps(value, indent=2, sort_keys=True, default=str))


def print_table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    rows = [["" if v is None else str(v) for v in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in rows:
        for i, v in enumerate(row):
            widths[i] = max(widths[i], len(v))
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    print(fmt.format(*headers).rstrip())
    for row in rows:
        print(fmt.format(*row).rstrip())


def print_fields(pairs: Iterable[tuple[str, Any]]) -> None:
    pairs = list(pairs)
    width = max((len(k) for k, _ in pairs), default=0)
    for k, v in pairs:
        print(f"{k + ':':<{width + 1}} {'' if v is None else v}")
