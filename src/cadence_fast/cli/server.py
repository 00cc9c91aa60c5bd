"""`cadence-fast server start`."""

from __future__ import annotations

import argparse
import sys

from cadence_fast.config import DEFAULT_DB, DEFAULT_PORT, ConfigError, ServerConfig


def register(sub: argparse._SubParsersAction) -> None:
    group = sub.add_parser("server", help="run the server")
    gsub = group.add_subparsers(dest="server_command", metavar="COMMAND")
    start = gsub.add_parser("start", help="start the server (embedded SQLite by default)")
    start.add_argument("--port", type=int, help=f"gRPC port (default {DEFAULT_PORT})")
    start.add_argument("--host", help="interface to listen on (default 127.0.0.1)")
    start.add_argument("--db", metavar="PATH", help=f"SQLite file; short for --store sqlite:///PATH (default {DEFAULT_DB})")
    start.add_argument("--store", metavar="URL", help="store URL: sqlite:///PATH, sqlite://:memory:, postgresql://..., mysql://...")
    start.add_argument("--shards", type=int, help="number of history shards (default 4)")
    start.add_argument("--config", metavar="FILE", help="TOML file of settings; flags override it")
    start.add_argument("--log-level", choices=["debug", "info", "warning", "error"], help="default warning")
    start.add_argument(
        "--transport",
        choices=["native", "grpcio"],
        help="gRPC server: native (HTTP/2 on the event loop, default) or grpcio (grpc.aio)",
    )
    start.set_defaults(handler=_start)


def _start(args: argparse.Namespace) -> int:
    from cadence_fast import server

    if args.db and args.store:
        print("cadence-fast: give --db or --store, not both", file=sys.stderr)
        return 2
    try:
        config = ServerConfig.from_toml(args.config) if args.config else ServerConfig()
        store = args.store or (f"sqlite:///{args.db}" if args.db else None)
        config = config.merged(
            {"port": args.port, "host": args.host, "store": store, "shards": args.shards, "log_level": args.log_level,
             "transport": args.transport},
            source="command line",
        )
    except ConfigError as e:
        print(f"cadence-fast: {e}", file=sys.stderr)
        return 2
    return server.run(config)
