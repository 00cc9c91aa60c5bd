"""`cadence-fast bench`: drive any Cadence gRPC frontend with Cadence bench's "basic" load."""

from __future__ import annotations

import argparse
import json
import sys

from cadence_fast.cli.common import add_address, add_json, print_fields, run_command


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "bench",
        help="load-test a Cadence frontend (this server or Go Cadence)",
        description="W workflows x A sequential activities (optionally S signals and T timers each); "
        "prints throughput and start-to-close latency percentiles.",
    )
    add_address(p)
    add_json(p)
    p.add_argument("--domain", default="bench", help="domain to run in (registered if missing; default %(default)s)")
    p.add_argument("-w", "--workflows", type=int, default=1000, help="workflows to run (default %(default)s)")
    p.add_argument("-a", "--activities", type=int, default=1, help="sequential activities per workflow (default %(default)s)")
    p.add_argument("-s", "--signals", type=int, default=0, help="signals each workflow waits for (default 0)")
    p.add_argument("-t", "--timers", type=int, default=0, help="timers each workflow sleeps (default 0)")
    p.add_argument("--timer-ms", type=int, default=100, help="duration of each timer in ms (default %(default)s)")
    p.add_argument("-c", "--concurrency", type=int, default=50, help="concurrent starts (default %(default)s)")
    p.add_argument("-i", "--inflight", type=int, default=0, help="at most N workflows open at once (0: no limit)")
    p.add_argument("--pollers", type=int, default=16, help="decision pollers, and as many activity pollers")
    p.add_argument("--timeout", type=float, default=0.0,
                   help="stop after this many seconds and report what completed (0: wait for all; exit 1 if cut short)")
    p.set_defaults(handler=run_command(_bench))


def _bench(args: argparse.Namespace) -> int:
    import uvloop

    from cadence_fast.bench.basic import BenchConfig, run

    for name in ("workflows", "concurrency", "pollers", "timer_ms"):
        if getattr(args, name) < 1:
            print(f"cadence-fast: --{name.replace('_', '-')} must be at least 1", file=sys.stderr)
            return 2
    for name in ("activities", "signals", "timers", "inflight", "timeout"):
        if getattr(args, name) < 0:
            print(f"cadence-fast: --{name} must not be negative", file=sys.stderr)
            return 2
    cfg = BenchConfig(
        address=args.address,
        domain=args.domain,
        workflows=args.workflows,
        activities=args.activities,
        signals=args.signals,
        timers=args.timers,
        timer_ms=args.timer_ms,
        concurrency=args.concurrency,
        inflight=args.inflight,
        pollers=args.pollers,
        progress=not args.json,
        timeout=args.timeout,
    )
    result = uvloop.run(run(cfg))
    if args.json:
        print(json.dumps(result.summary()))
    else:
        print_fields(
            [
                ("target", result.address),
                ("workflows", f"{result.completed}/{result.workflows} completed"),
                ("per workflow", f"{result.activities} activities, {result.signals} signals, {result.timers} timers"),
                ("elapsed", f"{result.seconds:.2f} s"),
                ("throughput", f"{result.workflows_per_second:.1f} workflows/s"),
                ("latency p50", f"{result.p50_ms:.1f} ms"),
                ("latency p95", f"{result.p95_ms:.1f} ms"),
                ("latency p99", f"{result.p99_ms:.1f} ms"),
                ("latency max", f"{result.max_ms:.1f} ms"),
                ("rpc errors", result.errors),
                *([("timed out", f"after {args.timeout:g} s")] if result.timed_out else []),
            ]
        )
    return 0 if result.completed == result.workflows else 1
