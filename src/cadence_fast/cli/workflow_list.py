"""`workflow list | scan | count`: find workflows through the visibility API, page by page."""

from __future__ import annotations

import argparse
import base64
import binascii
import json
import sys
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from cadence_fast.cli import render
from cadence_fast.cli.args import leaf, parse_choice, parse_time, resolve_domain, visibility_api
from cadence_fast.cli.common import CliError, call, print_json, print_table, run_command, to_dict

if TYPE_CHECKING:
    from cadence.api.v1 import workflow_pb2
    from google.protobuf.timestamp_pb2 import Timestamp

    #: One page of executions and the token of the next, from a page token.
    Fetch = Callable[[bytes], tuple[Sequence[workflow_pb2.WorkflowExecutionInfo], bytes]]

#: --status → the WorkflowExecutionCloseStatus value's name (looked up when the request is built).
CLOSE_STATUSES = {
    "completed": "WORKFLOW_EXECUTION_CLOSE_STATUS_COMPLETED",
    "failed": "WORKFLOW_EXECUTION_CLOSE_STATUS_FAILED",
    "canceled": "WORKFLOW_EXECUTION_CLOSE_STATUS_CANCELED",
    "terminated": "WORKFLOW_EXECUTION_CLOSE_STATUS_TERMINATED",
    "continued_as_new": "WORKFLOW_EXECUTION_CLOSE_STATUS_CONTINUED_AS_NEW",
    "timed_out": "WORKFLOW_EXECUTION_CLOSE_STATUS_TIMED_OUT",
}


def execution_rows(
    executions: Sequence[workflow_pb2.WorkflowExecutionInfo], args: argparse.Namespace
) -> tuple[list[str], list[list[Any]]]:
    headers = ["WORKFLOW TYPE", "WORKFLOW ID", "RUN ID", "TASK LIST", "START TIME", "CLOSE TIME", "STATUS"]
    if args.print_memo:
        headers.append("MEMO")
    if args.print_search_attr:
        headers.append("SEARCH ATTRIBUTES")
    rows = []
    for info in executions:
        row: list[Any] = [
            info.type.name, info.workflow_execution.workflow_id, info.workflow_execution.run_id,
            info.task_list or info.task_list_info.name, render.format_time(info.start_time),
            render.format_time(info.close_time), render.execution_status(info),
        ]
        if args.print_memo:
            row.append(render.value_text(info.DESCRIPTOR.fields_by_name["memo"], info.memo, 0))
        if args.print_search_attr:
            row.append(render.value_text(info.DESCRIPTOR.fields_by_name["search_attributes"], info.search_attributes, 0))
        rows.append(row)
    return headers, rows


def page_through(fetch: Fetch, args: argparse.Namespace, mode: str) -> int:
    """Print pages of executions. mode: "one" (first page, say if there is more), "all", "more"
    (wait for Enter between pages, as the Go CLI's --more)."""
    token = decode_token(getattr(args, "next_page_token", None))
    total = 0
    first = True
    while True:
        executions, token = fetch(token)
        total += len(executions)
        if args.json:
            if mode == "one":
                out: dict[str, Any] = {"executions": [to_dict(e) for e in executions]}
                if token:
                    out["next_page_token"] = base64.b64encode(token).decode()
                print_json(out)
                return 0
            for e in executions:  # one JSON object per line: a stream a script can read page by page
                print(json.dumps(to_dict(e), sort_keys=True), flush=True)
        elif executions or first:
            if not first:
                print()
            headers, rows = execution_rows(executions, args)
            print_table(headers, rows)
            sys.stdout.flush()
        first = False
        if not token:
            return 0
        if mode == "one":
            print(
                f"(more results: --more to page, --all for everything, or --next_page_token "
                f"{base64.b64encode(token).decode()})",
                file=sys.stderr,
            )
            return 0
        if mode == "more":
            print("-- more: press Enter for the next page, q then Enter to stop --", file=sys.stderr, flush=True)
            answer = sys.stdin.readline()
            if not answer or answer.strip().lower().startswith("q"):
                return 0


def decode_token(text: str | None) -> bytes:
    if not text:
        return b""
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise CliError("--next_page_token: not a token printed by a previous page") from None


def add_listing_flags(parser: argparse.ArgumentParser, pagesize: int) -> None:
    parser.add_argument("--query", "-q", dest="query", default="", help="visibility query, e.g. \"WorkflowType = 'T'\"")
    parser.add_argument(
        "--pagesize", "--ps", dest="pagesize", type=int, default=pagesize, help="results per page (default %(default)s)"
    )
    parser.add_argument("--print_memo", "--pme", dest="print_memo", action="store_true", help="add a memo column")
    parser.add_argument(
        "--print_search_attr", "--psa", dest="print_search_attr", action="store_true",
        help="add a search attributes column",
    )


def check_pagesize(args: argparse.Namespace) -> int:
    if args.pagesize <= 0:
        raise CliError("--pagesize must be greater than 0")
    return int(args.pagesize)


@run_command
def cmd_list(args: argparse.Namespace) -> int:
    from cadence.api.v1 import service_visibility_pb2, visibility_pb2, workflow_pb2
    from google.protobuf.timestamp_pb2 import Timestamp

    domain = resolve_domain(args)
    stub = visibility_api(args)
    pagesize = check_pagesize(args)
    if args.more and args.all:
        raise CliError("give --more or --all, not both")
    mode = "all" if args.all else "more" if args.more else "one"
    filter_flags = {
        "open": "--open", "workflow_id": "--workflow_id", "workflow_type": "--workflow_type", "status": "--status",
        "earliest_time": "--earliest_time", "latest_time": "--latest_time",
    }
    given = [flag for dest, flag in filter_flags.items() if getattr(args, dest)]
    if args.query and given:
        # Silently dropping a filter would list the wrong workflows.
        raise CliError(f"--query cannot be combined with {', '.join(given)}: put the condition in the query")
    if args.query:
        def fetch_query(token: bytes) -> tuple[Sequence[workflow_pb2.WorkflowExecutionInfo], bytes]:
            req = service_visibility_pb2.ListWorkflowExecutionsRequest(
                domain=domain, page_size=pagesize, next_page_token=token, query=args.query
            )
            resp = call(stub.ListWorkflowExecutions, req)
            return resp.executions, resp.next_page_token
        return page_through(fetch_query, args, mode)

    filters = [f for f in ("workflow_id", "workflow_type", "status") if getattr(args, f)]
    if len(filters) > 1:
        raise CliError("give at most one of --workflow_id, --workflow_type, --status (or use --query)")
    if args.status and args.open:
        raise CliError("--status filters closed workflows; it cannot be used with --open")
    status = parse_choice(args.status, CLOSE_STATUSES, "--status")
    window = visibility_pb2.StartTimeFilter(
        earliest_time=parse_time(args.earliest_time, "--earliest_time") if args.earliest_time else Timestamp(),
        latest_time=parse_time(args.latest_time, "--latest_time") if args.latest_time else now_timestamp(),
    )
    common: dict[str, Any] = {"domain": domain, "page_size": pagesize, "start_time_filter": window}
    if args.workflow_id:
        common["execution_filter"] = visibility_pb2.WorkflowExecutionFilter(workflow_id=args.workflow_id)
    elif args.workflow_type:
        common["type_filter"] = visibility_pb2.WorkflowTypeFilter(name=args.workflow_type)

    def fetch_filtered(token: bytes) -> tuple[Sequence[workflow_pb2.WorkflowExecutionInfo], bytes]:
        if args.open:
            resp = call(
                stub.ListOpenWorkflowExecutions,
                service_visibility_pb2.ListOpenWorkflowExecutionsRequest(next_page_token=token, **common),
            )
        else:
            req = service_visibility_pb2.ListClosedWorkflowExecutionsRequest(next_page_token=token, **common)
            if status is not None:
                req.status_filter.status = workflow_pb2.WorkflowExecutionCloseStatus.Value(status)
            resp = call(stub.ListClosedWorkflowExecutions, req)
        return resp.executions, resp.next_page_token

    return page_through(fetch_filtered, args, mode)


def now_timestamp() -> Timestamp:
    from google.protobuf.timestamp_pb2 import Timestamp

    ts = Timestamp()
    ts.FromNanoseconds(time.time_ns())
    return ts


@run_command
def cmd_scan(args: argparse.Namespace) -> int:
    from cadence.api.v1 import service_visibility_pb2

    domain = resolve_domain(args)
    stub = visibility_api(args)
    pagesize = check_pagesize(args)

    def fetch(token: bytes) -> tuple[Sequence[workflow_pb2.WorkflowExecutionInfo], bytes]:
        req = service_visibility_pb2.ScanWorkflowExecutionsRequest(
            domain=domain, page_size=pagesize, next_page_token=token, query=args.query
        )
        resp = call(stub.ScanWorkflowExecutions, req)
        return resp.executions, resp.next_page_token

    # A scan is for everything that matches: all pages, no prompt.
    return page_through(fetch, args, "all")


@run_command
def cmd_count(args: argparse.Namespace) -> int:
    from cadence.api.v1 import service_visibility_pb2

    domain = resolve_domain(args)
    req = service_visibility_pb2.CountWorkflowExecutionsRequest(domain=domain, query=args.query)
    resp = call(visibility_api(args).CountWorkflowExecutions, req)
    if args.json:
        print_json({"count": resp.count})
    else:
        print(resp.count)
    return 0


def register(gsub: argparse._SubParsersAction) -> None:
    """Add list, scan and count to the `workflow` group."""
    p = leaf(gsub, "list", "list workflows (open or closed, or by --query)", aliases=["l"])
    add_listing_flags(p, pagesize=10)
    p.add_argument("--open", "--op", dest="open", action="store_true", help="open workflows (default: closed)")
    p.add_argument("--more", "--m", dest="more", action="store_true", help="page: wait for Enter between pages")
    p.add_argument("--all", dest="all", action="store_true", help="print every page")
    p.add_argument("--next_page_token", dest="next_page_token", help="continue from a page a previous call printed")
    p.add_argument("--earliest_time", "--et", dest="earliest_time", help="started at or after (RFC 3339 or e.g. 2h)")
    p.add_argument("--latest_time", "--lt", dest="latest_time", help="started at or before (default now)")
    p.add_argument("--workflow_id", "--wid", "-w", dest="workflow_id", help="filter by workflow id")
    p.add_argument("--workflow_type", "--wt", dest="workflow_type", help="filter by workflow type")
    p.add_argument("--status", "-s", dest="status", help="closed workflows with this status: " + ", ".join(CLOSE_STATUSES))
    p.set_defaults(handler=cmd_list)

    p = leaf(gsub, "scan", "list every workflow matching --query, all pages (unordered, fast)", aliases=["sc", "scanall"])
    add_listing_flags(p, pagesize=1000)
    p.set_defaults(handler=cmd_scan)

    p = leaf(gsub, "count", "count workflows matching --query", aliases=["cnt"])
    p.add_argument("--query", "-q", dest="query", default="", help="visibility query (default: all workflows)")
    p.set_defaults(handler=cmd_count)
