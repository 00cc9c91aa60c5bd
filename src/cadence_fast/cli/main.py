"""`cadence-fast`: the server and the operator's commands.

Each command group lives in its own module with a `register(subparsers)` function;
a command's handler returns the process exit code. Every call builds the whole parser, so
the group modules import gRPC, protobuf and the store layer inside their handlers
(tests/cli/test_cli_startup.py keeps `--help` and `schema` free of them).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from cadence_fast import __version__
from cadence_fast.cli import bench, domain, schema, server, tasklist, workflow

GROUPS = (server, domain, workflow, tasklist, schema, bench)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cadence-fast", description="A Cadence-compatible workflow server and its command line."
    )
    parser.add_argument("--version", action="version", version=f"cadence-fast {__version__}")
    sub = parser.add_subparsers(dest="group", metavar="COMMAND")
    sub.required = True
    for group in GROUPS:
        group.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = getattr(args, "handler", None)
    if handler is None:
        # A group given without its subcommand: show that group's usage.
        parser.parse_args([*(argv if argv is not None else sys.argv[1:]), "--help"])
        return 2
    return int(handler(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
