"""`cadence-fast tasklist ...`: who polls a task list, its backlog, its partitions (as `cadence tasklist`)."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from cadence_fast.cli import render
from cadence_fast.cli.args import add_group_flags, leaf, require, resolve_domain, workflow_api
from cadence_fast.cli.common import (
    CliError,
    call,
    print_fields,
    print_json,
    print_table,
    run_command,
)

if TYPE_CHECKING:
    from cadence.api.v1 import tasklist_pb2

#: --tasklisttype → the TaskListType value's name (looked up when the request is built).
TASK_LIST_TYPES = {
    "decision": "TASK_LIST_TYPE_DECISION",
    "activity": "TASK_LIST_TYPE_ACTIVITY",
}


def task_list_type(text: str) -> int:
    from cadence.api.v1 import tasklist_pb2

    key = text.strip().lower()
    if key not in TASK_LIST_TYPES:
        raise CliError(f"--tasklisttype: unknown value {text!r} (one of: decision, activity)")
    return tasklist_pb2.TaskListType.Value(TASK_LIST_TYPES[key])


def task_list(args: argparse.Namespace) -> tasklist_pb2.TaskList:
    from cadence.api.v1 import tasklist_pb2

    return tasklist_pb2.TaskList(name=require(args.tasklist, "--tasklist"), kind=tasklist_pb2.TASK_LIST_KIND_NORMAL)


def poller_rows(pollers: Any) -> list[list[Any]]:
    return [
        [p.identity, render.format_time(p.last_access_time), f"{p.rate_per_second:g}" if p.rate_per_second else ""]
        for p in pollers
    ]


@run_command
def cmd_describe(args: argparse.Namespace) -> int:
    from cadence.api.v1 import service_workflow_pb2

    domain = resolve_domain(args)
    kind = task_list_type(args.tasklisttype)
    req = service_workflow_pb2.DescribeTaskListRequest(
        domain=domain, task_list=task_list(args), task_list_type=kind, include_task_list_status=True
    )
    resp = call(workflow_api(args).DescribeTaskList, req)
    if args.json:
        print_json(resp)
        return 0
    fields: list[tuple[str, Any]] = [("Task list", args.tasklist), ("Type", args.tasklisttype.lower())]
    if resp.HasField("task_list_status"):
        s = resp.task_list_status
        fields += [
            ("Backlog", s.backlog_count_hint),
            ("Read level", s.read_level),
            ("Ack level", s.ack_level),
            ("Rate per second", f"{s.rate_per_second:g}"),
        ]
    print_fields(fields)
    print()
    if not resp.pollers:
        print(f"No poller for task list {args.tasklist} ({args.tasklisttype.lower()}).")
        return 0
    print_table(["POLLER IDENTITY", "LAST ACCESS TIME", "RATE PER SECOND"], poller_rows(resp.pollers))
    return 0


@run_command
def cmd_list_partition(args: argparse.Namespace) -> int:
    from cadence.api.v1 import service_workflow_pb2

    domain = resolve_domain(args)
    req = service_workflow_pb2.ListTaskListPartitionsRequest(domain=domain, task_list=task_list(args))
    resp = call(workflow_api(args).ListTaskListPartitions, req)
    if args.json:
        print_json(resp)
        return 0
    print_table(
        ["ACTIVITY TASK LIST PARTITION", "HOST"], [[p.key, p.owner_host_name] for p in resp.activity_task_list_partitions]
    )
    print()
    print_table(
        ["DECISION TASK LIST PARTITION", "HOST"], [[p.key, p.owner_host_name] for p in resp.decision_task_list_partitions]
    )
    return 0


@run_command
def cmd_list(args: argparse.Namespace) -> int:
    from cadence.api.v1 import service_workflow_pb2

    domain = resolve_domain(args)
    resp = call(workflow_api(args).GetTaskListsByDomain, service_workflow_pb2.GetTaskListsByDomainRequest(domain=domain))
    if args.json:
        print_json(resp)
        return 0
    rows = [[name, "decision", len(d.pollers)] for name, d in sorted(resp.decision_task_list_map.items())]
    rows += [[name, "activity", len(d.pollers)] for name, d in sorted(resp.activity_task_list_map.items())]
    print_table(["TASK LIST", "TYPE", "POLLERS"], rows)
    return 0


def _add_task_list(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--tasklist", "--tl", dest="tasklist", help="task list name (required)")


def register(sub: argparse._SubParsersAction) -> None:
    group = sub.add_parser(
        "tasklist", aliases=["tl"], help="inspect task lists",
        description="Inspect task lists (mirrors `cadence tasklist`).",
    )
    add_group_flags(group)
    gsub = group.add_subparsers(dest="tasklist_command", metavar="COMMAND")

    p = leaf(gsub, "describe", "pollers and backlog of a task list", ["desc"])
    _add_task_list(p)
    p.add_argument(
        "--tasklisttype", "--tlt", dest="tasklisttype", default="decision",
        help="decision (default) or activity",
    )
    p.set_defaults(handler=cmd_describe)

    p = leaf(gsub, "list-partition", "partitions of a task list and the hosts owning them", ["lp"])
    _add_task_list(p)
    p.set_defaults(handler=cmd_list_partition)

    p = leaf(gsub, "list", "the task lists of a domain", ["l"])
    p.set_defaults(handler=cmd_list)
