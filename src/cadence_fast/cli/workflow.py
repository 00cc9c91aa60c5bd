"""`cadence-fast workflow ...`: start, watch and act on workflows, as the Go `cadence` CLI does.

Names, flags and aliases follow the Go CLI (`--workflow_id/--wid/-w`, `--tasklist/--tl`, ...).
The domain comes from `--domain` (given after `workflow` or after the subcommand) or the
environment variable CADENCE_CLI_DOMAIN. Every command talks to the frontend over plain gRPC
with the official client's generated stubs; server errors print as one line and exit 1.
list / scan / count live in workflow_list.py; rendering of events in render.py.
"""

from __future__ import annotations

import argparse
import base64
import json
import time
import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from cadence_fast.cli import render, workflow_list
from cadence_fast.cli.args import (
    add_group_flags,
    add_input,
    duration,
    identity,
    leaf,
    parse_choice,
    parse_json_values,
    parse_key_values,
    parse_seconds,
    read_input,
    require,
    resolve_domain,
    workflow_api,
)
from cadence_fast.cli.common import (
    CliError,
    call,
    print_fields,
    print_json,
    print_table,
    run_command,
    to_dict,
)

if TYPE_CHECKING:
    from cadence.api.v1 import common_pb2, history_pb2, service_workflow_pb2, service_workflow_pb2_grpc

#: One long poll of GetWorkflowExecutionHistory; the server answers shortly before it.
POLL_SECONDS = 60.0
DEFAULT_DECISION_TIMEOUT = 10
DEFAULT_FIELD_LENGTH = 100

#: --workflowidreusepolicy → the WorkflowIdReusePolicy value's name (looked up when the request
#: is built, so that parsing flags needs no protobuf).
REUSE_POLICIES = {
    # Go CLI numbering (0..3) and names, both accepted.
    "0": "WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE_FAILED_ONLY",
    "1": "WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE",
    "2": "WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE",
    "3": "WORKFLOW_ID_REUSE_POLICY_TERMINATE_IF_RUNNING",
    "allowduplicatefailedonly": "WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE_FAILED_ONLY",
    "allowduplicate": "WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE",
    "rejectduplicate": "WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE",
    "terminateifrunning": "WORKFLOW_ID_REUSE_POLICY_TERMINATE_IF_RUNNING",
}

#: --query_reject_condition → the QueryRejectCondition value's name.
QUERY_REJECT_CONDITIONS = {
    "not_open": "QUERY_REJECT_CONDITION_NOT_OPEN",
    "not_completed_cleanly": "QUERY_REJECT_CONDITION_NOT_COMPLETED_CLEANLY",
}

#: The close event of a run → the status word printed for it.
CLOSE_EVENT_STATUS = {
    "WorkflowExecutionCompleted": "COMPLETED",
    "WorkflowExecutionFailed": "FAILED",
    "WorkflowExecutionTimedOut": "TIMED_OUT",
    "WorkflowExecutionCanceled": "CANCELED",
    "WorkflowExecutionTerminated": "TERMINATED",
    "WorkflowExecutionContinuedAsNew": "CONTINUED_AS_NEW",
}

RESET_TYPES = ("LastDecisionCompleted", "FirstDecisionCompleted")


# --------------------------------------------------------------------------------------------
# Flags of the workflow commands


def add_execution(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--workflow_id", "--wid", "-w", dest="workflow_id", help="workflow id (required)")
    parser.add_argument("--run_id", "--rid", "-r", dest="run_id", default="", help="run id (default: the current run)")


def add_start_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--tasklist", "--tl", dest="tasklist", help="task list (required)")
    parser.add_argument("--workflow_type", "--wt", dest="workflow_type", help="workflow type name (required)")
    parser.add_argument(
        "--execution_timeout", "--et", dest="execution_timeout",
        help="workflow execution timeout, seconds or 30s/5m/2h (required)",
    )
    parser.add_argument(
        "--decision_timeout", "--dt", dest="decision_timeout", default=str(DEFAULT_DECISION_TIMEOUT),
        help="decision task start-to-close timeout (default %(default)ss)",
    )
    parser.add_argument("--workflow_id", "--wid", "-w", dest="workflow_id", help="workflow id (default: a new uuid)")
    add_input(parser)
    parser.add_argument(
        "--workflowidreusepolicy", "--workflow_id_reuse_policy", "--wrp", dest="reuse_policy",
        help="0 AllowDuplicateFailedOnly (default), 1 AllowDuplicate, 2 RejectDuplicate, 3 TerminateIfRunning",
    )
    parser.add_argument("--cron", dest="cron", help="cron schedule, e.g. '*/5 * * * *'")
    parser.add_argument("--delay_start_seconds", dest="delay_start", help="delay before the first decision")
    parser.add_argument("--jitter_start_seconds", dest="jitter_start", help="random extra delay up to this")
    parser.add_argument("--retry_attempts", "--rttm", dest="retry_attempts", type=int, help="maximum attempts")
    parser.add_argument("--retry_interval", "--rti", dest="retry_interval", help="initial retry interval")
    parser.add_argument("--retry_backoff", "--rtb", dest="retry_backoff", type=float, help="backoff coefficient")
    parser.add_argument("--retry_max_interval", "--rtmi", dest="retry_max_interval", help="maximum retry interval")
    parser.add_argument("--retry_expiration", "--rte", dest="retry_expiration", help="retry expiration interval")
    parser.add_argument(
        "--memo", dest="memo", action="append", default=[], metavar="KEY=JSON", help="memo entry (repeatable)"
    )
    parser.add_argument(
        "--search_attr", dest="search_attr", action="append", default=[], metavar="KEY=JSON",
        help="search attribute (repeatable)",
    )


def add_field_length(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--max_field_length", "--maxl", dest="max_field_length", type=int, default=DEFAULT_FIELD_LENGTH,
        help="truncate attribute values to this length (default %(default)s; 0 = no limit)",
    )
    parser.add_argument("--print_full", "--pf", dest="print_full", action="store_true", help="never truncate")


def field_limit(args: argparse.Namespace) -> int:
    return 0 if args.print_full else max(args.max_field_length, 0)


def execution(args: argparse.Namespace) -> common_pb2.WorkflowExecution:
    from cadence.api.v1 import common_pb2

    return common_pb2.WorkflowExecution(
        workflow_id=require(args.workflow_id, "--workflow_id"), run_id=args.run_id or ""
    )


# --------------------------------------------------------------------------------------------
# start / run / signalwithstart


def build_start_request(args: argparse.Namespace, domain: str) -> service_workflow_pb2.StartWorkflowExecutionRequest:
    from cadence.api.v1 import common_pb2, service_workflow_pb2, tasklist_pb2, workflow_pb2

    tasklist = require(args.tasklist, "--tasklist")
    wtype = require(args.workflow_type, "--workflow_type")
    exec_timeout = parse_seconds(args.execution_timeout, "--execution_timeout", required=True)
    decision_timeout = parse_seconds(args.decision_timeout, "--decision_timeout", required=True)
    assert exec_timeout is not None and decision_timeout is not None
    req = service_workflow_pb2.StartWorkflowExecutionRequest(
        domain=domain,
        workflow_id=args.workflow_id or str(uuid.uuid4()),
        workflow_type=common_pb2.WorkflowType(name=wtype),
        task_list=tasklist_pb2.TaskList(name=tasklist, kind=tasklist_pb2.TASK_LIST_KIND_NORMAL),
        execution_start_to_close_timeout=duration(exec_timeout),
        task_start_to_close_timeout=duration(decision_timeout),
        identity=identity(),
        request_id=str(uuid.uuid4()),
    )
    payload = read_input(args)
    if payload is not None:
        req.input.CopyFrom(payload)
    policy = parse_choice(args.reuse_policy, REUSE_POLICIES, "--workflowidreusepolicy")
    if policy is not None:
        req.workflow_id_reuse_policy = workflow_pb2.WorkflowIdReusePolicy.Value(policy)
    if args.cron:
        req.cron_schedule = args.cron
    delay = parse_seconds(args.delay_start, "--delay_start_seconds", positive=False)
    if delay:
        req.delay_start.CopyFrom(duration(delay))
    jitter = parse_seconds(args.jitter_start, "--jitter_start_seconds", positive=False)
    if jitter:
        req.jitter_start.CopyFrom(duration(jitter))
    retry = retry_policy(args)
    if retry is not None:
        req.retry_policy.CopyFrom(retry)
    for key, value in parse_key_values(args.memo, "--memo").items():
        req.memo.fields[key].CopyFrom(value)
    for key, value in parse_key_values(args.search_attr, "--search_attr").items():
        req.search_attributes.indexed_fields[key].CopyFrom(value)
    return req


def retry_policy(args: argparse.Namespace) -> common_pb2.RetryPolicy | None:
    from cadence.api.v1 import common_pb2

    given = [args.retry_attempts, args.retry_interval, args.retry_backoff, args.retry_max_interval, args.retry_expiration]
    if all(v is None for v in given):
        return None
    policy = common_pb2.RetryPolicy(
        initial_interval=duration(parse_seconds(args.retry_interval, "--retry_interval") or 1.0),
        backoff_coefficient=args.retry_backoff if args.retry_backoff is not None else 2.0,
    )
    if args.retry_attempts is not None:
        if args.retry_attempts < 0:
            raise CliError("--retry_attempts must not be negative")
        policy.maximum_attempts = args.retry_attempts
    max_interval = parse_seconds(args.retry_max_interval, "--retry_max_interval")
    if max_interval:
        policy.maximum_interval.CopyFrom(duration(max_interval))
    expiration = parse_seconds(args.retry_expiration, "--retry_expiration")
    if expiration:
        policy.expiration_interval.CopyFrom(duration(expiration))
    if policy.maximum_attempts == 0 and not expiration:
        raise CliError("a retry policy needs --retry_attempts or --retry_expiration")
    return policy


@run_command
def cmd_start(args: argparse.Namespace) -> int:
    domain = resolve_domain(args)
    req = build_start_request(args, domain)
    resp = call(workflow_api(args).StartWorkflowExecution, req)
    if args.json:
        print_json({"workflow_id": req.workflow_id, "run_id": resp.run_id})
    else:
        print(f"Started workflow: workflow id {req.workflow_id}, run id {resp.run_id}")
    return 0


@run_command
def cmd_run(args: argparse.Namespace) -> int:
    from cadence.api.v1 import common_pb2

    domain = resolve_domain(args)
    req = build_start_request(args, domain)
    stub = workflow_api(args)
    resp = call(stub.StartWorkflowExecution, req)
    if not args.json:
        print(f"Started workflow: workflow id {req.workflow_id}, run id {resp.run_id}", flush=True)
    wait = parse_seconds(args.timeout, "--timeout")
    if wait is None:
        # Long enough for the run itself; a cron or retried workflow needs an explicit --timeout.
        wait = req.execution_start_to_close_timeout.ToTimedelta().total_seconds() + 60
    deadline = time.monotonic() + wait
    run_id = resp.run_id
    while True:
        close = wait_for_close(stub, domain, common_pb2.WorkflowExecution(workflow_id=req.workflow_id, run_id=run_id), deadline)
        attrs = close.workflow_execution_continued_as_new_event_attributes
        if render.event_type(close) != "WorkflowExecutionContinuedAsNew" or not attrs.new_execution_run_id:
            break
        # The workflow lives on in a new run: its result is that run's.
        if not args.json:
            print(f"Continued as new: run id {attrs.new_execution_run_id}", flush=True)
        run_id = attrs.new_execution_run_id
    return print_close(close, req.workflow_id, run_id, args.json)


def wait_for_close(
    stub: service_workflow_pb2_grpc.WorkflowAPIStub,
    domain: str,
    execution: common_pb2.WorkflowExecution,
    deadline: float | None,
) -> history_pb2.HistoryEvent:
    """Long-poll the close event of one run (the client's way of getting a result)."""
    import grpc
    from cadence.api.v1 import history_pb2, service_workflow_pb2

    req = service_workflow_pb2.GetWorkflowExecutionHistoryRequest(
        domain=domain,
        workflow_execution=execution,
        wait_for_new_event=True,
        history_event_filter_type=history_pb2.EVENT_FILTER_TYPE_CLOSE_EVENT,
        skip_archival=True,
    )
    while True:
        remaining = POLL_SECONDS if deadline is None else deadline - time.monotonic()
        if remaining <= 0:
            raise CliError(f"timed out waiting for workflow {execution.workflow_id} to close")
        started = time.monotonic()
        try:
            resp = call(stub.GetWorkflowExecutionHistory, req, timeout=min(POLL_SECONDS, remaining))
        except grpc.RpcError as e:
            if e.code() == grpc.StatusCode.DEADLINE_EXCEEDED:
                continue
            raise
        events = resp.history.events
        if events and render.event_type(events[-1]) in render.CLOSE_EVENTS:
            return events[-1]
        if time.monotonic() - started < 1.0:
            time.sleep(0.2)  # an early empty answer: don't spin


def close_summary(close: history_pb2.HistoryEvent) -> list[tuple[str, str, Any]]:
    """The outcome of a run from its close event: (key, label, value) in print order.
    Payload values are kept as their bytes so each output form decodes them its own way."""
    kind = render.event_type(close)
    out: list[tuple[str, str, Any]] = [("status", "Status", CLOSE_EVENT_STATUS.get(kind, kind))]
    if kind == "WorkflowExecutionCompleted":
        out.append(("result", "Result", close.workflow_execution_completed_event_attributes.result.data))
    elif kind == "WorkflowExecutionFailed":
        f = close.workflow_execution_failed_event_attributes.failure
        out += [("reason", "Reason", f.reason), ("details", "Details", render.payload_text(f.details))]
    elif kind == "WorkflowExecutionTimedOut":
        a = close.workflow_execution_timed_out_event_attributes
        timeout_type = render.enum_name(a.DESCRIPTOR.fields_by_name["timeout_type"], a.timeout_type)
        out.append(("timeout_type", "Timeout type", timeout_type))
    elif kind == "WorkflowExecutionCanceled":
        out.append(("details", "Details", close.workflow_execution_canceled_event_attributes.details.data))
    elif kind == "WorkflowExecutionTerminated":
        a = close.workflow_execution_terminated_event_attributes
        out += [("reason", "Reason", a.reason), ("details", "Details", a.details.data)]
        out.append(("identity", "Identity", a.identity))
    elif kind == "WorkflowExecutionContinuedAsNew":
        a = close.workflow_execution_continued_as_new_event_attributes
        out.append(("new_run_id", "New run id", a.new_execution_run_id))
    return out


def print_close(close: history_pb2.HistoryEvent, workflow_id: str, run_id: str, as_json: bool) -> int:
    """Print how a run ended; the exit code is 0 only if it completed."""
    summary = close_summary(close)
    if as_json:
        out: dict[str, Any] = {"workflow_id": workflow_id, "run_id": run_id}
        out.update({k: json_or_text(v) if isinstance(v, bytes) else v for k, _, v in summary})
        print_json(out)
    else:
        # Payloads print as their JSON text, so a string result shows its quotes as it would in code.
        print_fields(
            (label, render.payload_text(v) if isinstance(v, bytes) else v) for _, label, v in summary if v not in ("", b"")
        )
    return 0 if summary[0][2] == "COMPLETED" else 1


def json_or_text(data: bytes) -> Any:
    """A payload as a JSON value when it is one JSON value, else as text."""
    if not data:
        return None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return base64.b64encode(data).decode()
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


@run_command
def cmd_signal_with_start(args: argparse.Namespace) -> int:
    from cadence.api.v1 import service_workflow_pb2

    domain = resolve_domain(args)
    start = build_start_request(args, domain)
    req = service_workflow_pb2.SignalWithStartWorkflowExecutionRequest(
        start_request=start, signal_name=require(args.signal_name, "--signal_name")
    )
    payload = read_input(args, "signal_input", "--signal_input")
    if payload is not None:
        req.signal_input.CopyFrom(payload)
    resp = call(workflow_api(args).SignalWithStartWorkflowExecution, req)
    if args.json:
        print_json({"workflow_id": start.workflow_id, "run_id": resp.run_id})
    else:
        print(f"Signal-with-start succeeded: workflow id {start.workflow_id}, run id {resp.run_id}")
    return 0


# --------------------------------------------------------------------------------------------
# show / observe / describe


def history_pages(
    stub: service_workflow_pb2_grpc.WorkflowAPIStub, domain: str, execution: common_pb2.WorkflowExecution
) -> Iterator[history_pb2.HistoryEvent]:
    from cadence.api.v1 import service_workflow_pb2

    token = b""
    while True:
        req = service_workflow_pb2.GetWorkflowExecutionHistoryRequest(
            domain=domain, workflow_execution=execution, page_size=1000, next_page_token=token, skip_archival=True
        )
        resp = call(stub.GetWorkflowExecutionHistory, req)
        yield from resp.history.events
        token = resp.next_page_token
        if not token:
            return


@run_command
def cmd_show(args: argparse.Namespace) -> int:
    domain = resolve_domain(args)
    events = list(history_pages(workflow_api(args), domain, execution(args)))
    if args.event_id is not None:
        for event in events:
            if event.event_id == args.event_id:
                print_json(event)
                return 0
        raise CliError(f"--event_id: no event {args.event_id} in this history ({len(events)} events)")
    if args.output_filename:
        try:
            with open(args.output_filename, "w", encoding="utf-8") as f:
                json.dump({"events": [to_dict(e) for e in events]}, f, indent=2, sort_keys=True)
        except OSError as e:
            raise CliError(f"--output_filename: cannot write {args.output_filename}: {e.strerror or e}") from None
        print(f"History of {len(events)} events written to {args.output_filename}")
        return 0
    if args.json:
        print_json({"events": [to_dict(e) for e in events]})
        return 0
    limit = field_limit(args)
    print_table(["ID", "TIME", "TYPE", "DETAILS"], (render.event_row(e, limit) for e in events))
    return 0


@run_command
def cmd_observe(args: argparse.Namespace) -> int:
    """Follow a run's history as it grows, one line per event, until the run closes."""
    import grpc
    from cadence.api.v1 import service_workflow_pb2

    domain = resolve_domain(args)
    stub = workflow_api(args)
    execution_ = execution(args)
    if not execution_.run_id:
        # Pin the current run: a later re-read must see the same run even if a new one starts.
        described = call(
            stub.DescribeWorkflowExecution,
            service_workflow_pb2.DescribeWorkflowExecutionRequest(domain=domain, workflow_execution=execution_),
        )
        execution_.run_id = described.workflow_execution_info.workflow_execution.run_id
    limit = field_limit(args)
    token = b""
    last_id = 0
    while True:
        req = service_workflow_pb2.GetWorkflowExecutionHistoryRequest(
            domain=domain, workflow_execution=execution_, next_page_token=token,
            wait_for_new_event=True, skip_archival=True,
        )
        started = time.monotonic()
        try:
            resp = call(stub.GetWorkflowExecutionHistory, req, timeout=POLL_SECONDS)
        except grpc.RpcError as e:
            if e.code() == grpc.StatusCode.DEADLINE_EXCEEDED:
                continue
            raise
        new = [e for e in resp.history.events if e.event_id > last_id]
        if new and new[0].event_id != last_id + 1:
            # A hole (the token ran ahead of an event written later, e.g. a decision's Started
            # recorded with its completion): read the run again and print what was missed.
            new = [e for e in history_pages(stub, domain, execution_) if e.event_id > last_id]
        for event in new:
            last_id = event.event_id
            if args.json:
                print(json.dumps(to_dict(event), sort_keys=True), flush=True)
            else:
                print(render.event_line(event, limit), flush=True)
            if render.event_type(event) in render.CLOSE_EVENTS:
                if not args.json:
                    print()
                    print_close(event, execution_.workflow_id, execution_.run_id, False)
                return 0
        token = resp.next_page_token
        if not new and time.monotonic() - started < 1.0:
            time.sleep(0.2)  # an early answer with nothing new: don't spin


@run_command
def cmd_describe(args: argparse.Namespace) -> int:
    from cadence.api.v1 import service_workflow_pb2

    domain = resolve_domain(args)
    req = service_workflow_pb2.DescribeWorkflowExecutionRequest(domain=domain, workflow_execution=execution(args))
    resp = call(workflow_api(args).DescribeWorkflowExecution, req)
    if args.json:
        print_json(resp)
        return 0
    info, config = resp.workflow_execution_info, resp.execution_configuration
    pairs: list[tuple[str, Any]] = [
        ("Workflow id", info.workflow_execution.workflow_id),
        ("Run id", info.workflow_execution.run_id),
        ("Type", info.type.name),
        ("Task list", config.task_list.name or info.task_list),
        ("Status", render.execution_status(info)),
        ("Start time", render.format_time(info.start_time)),
        ("Execution time", render.format_time(info.execution_time)),
        ("Close time", render.format_time(info.close_time)),
        ("History length", info.history_length),
        ("Execution timeout", render.format_duration(config.execution_start_to_close_timeout)),
        ("Decision timeout", render.format_duration(config.task_start_to_close_timeout)),
    ]
    if info.HasField("parent_execution_info"):
        parent = info.parent_execution_info
        pairs.append(("Parent", f"{parent.workflow_execution.workflow_id}/{parent.workflow_execution.run_id}"))
    if info.cron_schedule:
        pairs.append(("Cron schedule", info.cron_schedule))
    if info.memo.fields:
        pairs.append(("Memo", render.value_text(info.DESCRIPTOR.fields_by_name["memo"], info.memo, 0)))
    if info.search_attributes.indexed_fields:
        field = info.DESCRIPTOR.fields_by_name["search_attributes"]
        pairs.append(("Search attributes", render.value_text(field, info.search_attributes, 0)))
    print_fields((k, v) for k, v in pairs if v != "")  # e.g. no close time while open
    if resp.HasField("pending_decision"):
        d = resp.pending_decision
        state = render.enum_name(d.DESCRIPTOR.fields_by_name["state"], d.state)
        print()
        print_fields([
            ("Pending decision", state),
            ("  Scheduled", render.format_time(d.scheduled_time)),
            ("  Started", render.format_time(d.started_time)),
            ("  Attempt", d.attempt),
        ])
    if resp.pending_activities:
        print()
        print("Pending activities:")
        print_table(
            ["ACTIVITY ID", "TYPE", "STATE", "ATTEMPT", "SCHEDULED", "LAST STARTED", "LAST FAILURE"],
            [
                [
                    a.activity_id, a.activity_type.name,
                    render.enum_name(a.DESCRIPTOR.fields_by_name["state"], a.state), a.attempt,
                    render.format_time(a.scheduled_time), render.format_time(a.last_started_time),
                    render.truncate(a.last_failure.reason, 60),
                ]
                for a in resp.pending_activities
            ],
        )
    if resp.pending_children:
        print()
        print("Pending children:")
        print_table(
            ["WORKFLOW ID", "RUN ID", "TYPE", "INITIATED ID"],
            [
                [c.workflow_execution.workflow_id, c.workflow_execution.run_id, c.workflow_type_name, c.initiated_id]
                for c in resp.pending_children
            ],
        )
    return 0


# --------------------------------------------------------------------------------------------
# query / signal / cancel / terminate / reset


@run_command
def cmd_query(args: argparse.Namespace) -> int:
    from cadence.api.v1 import query_pb2, service_workflow_pb2

    domain = resolve_domain(args)
    query = query_pb2.WorkflowQuery(query_type=require(args.query_type, "--query_type"))
    payload = read_input(args)
    if payload is not None:
        query.query_args.CopyFrom(payload)
    req = service_workflow_pb2.QueryWorkflowRequest(domain=domain, workflow_execution=execution(args), query=query)
    condition = parse_choice(args.query_reject_condition, QUERY_REJECT_CONDITIONS, "--query_reject_condition")
    if condition is not None:
        req.query_reject_condition = query_pb2.QueryRejectCondition.Value(condition)
    resp = call(workflow_api(args).QueryWorkflow, req)
    if resp.HasField("query_rejected"):
        field = resp.query_rejected.DESCRIPTOR.fields_by_name["close_status"]
        status = render.enum_name(field, resp.query_rejected.close_status)
        if args.json:
            print_json({"rejected": True, "close_status": status})
        else:
            print(f"Query was rejected: the workflow is {status}")
        return 0
    if args.json:
        print_json({"query_result": json_or_text(resp.query_result.data)})
    else:
        print(render.payload_text(resp.query_result.data))
    return 0


@run_command
def cmd_signal(args: argparse.Namespace) -> int:
    from cadence.api.v1 import service_workflow_pb2

    domain = resolve_domain(args)
    req = service_workflow_pb2.SignalWorkflowExecutionRequest(
        domain=domain, workflow_execution=execution(args), identity=identity(),
        request_id=str(uuid.uuid4()), signal_name=require(args.name, "--name"),
    )
    payload = read_input(args)
    if payload is not None:
        req.signal_input.CopyFrom(payload)
    call(workflow_api(args).SignalWorkflowExecution, req)
    done(args, "Signal workflow succeeded.")
    return 0


@run_command
def cmd_cancel(args: argparse.Namespace) -> int:
    from cadence.api.v1 import service_workflow_pb2

    domain = resolve_domain(args)
    req = service_workflow_pb2.RequestCancelWorkflowExecutionRequest(
        domain=domain, workflow_execution=execution(args), identity=identity(),
        request_id=str(uuid.uuid4()), cause=args.reason or "",
    )
    call(workflow_api(args).RequestCancelWorkflowExecution, req)
    done(args, "Cancel workflow requested.")
    return 0


@run_command
def cmd_terminate(args: argparse.Namespace) -> int:
    from cadence.api.v1 import common_pb2, service_workflow_pb2

    domain = resolve_domain(args)
    req = service_workflow_pb2.TerminateWorkflowExecutionRequest(
        domain=domain, workflow_execution=execution(args), reason=args.reason or "", identity=identity()
    )
    if args.details is not None:
        req.details.CopyFrom(common_pb2.Payload(data=parse_json_values(args.details, "--details")))
    call(workflow_api(args).TerminateWorkflowExecution, req)
    done(args, "Terminate workflow succeeded.")
    return 0


def done(args: argparse.Namespace, message: str) -> None:
    if args.json:
        print_json({"ok": True})
    else:
        print(message)


def reset_event_id(
    stub: service_workflow_pb2_grpc.WorkflowAPIStub, domain: str, execution_: common_pb2.WorkflowExecution, reset_type: str
) -> int:
    """The DecisionTaskCompleted a reset type names, found in the history (as the Go CLI does)."""
    completed = [
        e.event_id for e in history_pages(stub, domain, execution_) if render.event_type(e) == "DecisionTaskCompleted"
    ]
    if not completed:
        raise CliError(f"--reset_type {reset_type}: the history has no DecisionTaskCompleted event")
    return completed[-1] if reset_type == "LastDecisionCompleted" else completed[0]


@run_command
def cmd_reset(args: argparse.Namespace) -> int:
    from cadence.api.v1 import service_workflow_pb2

    domain = resolve_domain(args)
    stub = workflow_api(args)
    execution_ = execution(args)
    reason = require(args.reason, "--reason")
    if (args.event_id is None) == (args.reset_type is None):
        raise CliError("give exactly one of --event_id or --reset_type")
    if args.reset_type is not None:
        matches = [t for t in RESET_TYPES if t.lower() == args.reset_type.lower()]
        if not matches:
            raise CliError(f"--reset_type: unknown value {args.reset_type!r} (one of: {', '.join(RESET_TYPES)})")
        event_id = reset_event_id(stub, domain, execution_, matches[0])
    else:
        event_id = args.event_id
        if event_id <= 0:
            raise CliError("--event_id must be greater than 0")
    req = service_workflow_pb2.ResetWorkflowExecutionRequest(
        domain=domain, workflow_execution=execution_, reason=reason, decision_finish_event_id=event_id,
        request_id=str(uuid.uuid4()), skip_signal_reapply=args.skip_signal_reapply,
    )
    resp = call(stub.ResetWorkflowExecution, req)
    if args.json:
        print_json({"workflow_id": execution_.workflow_id, "run_id": resp.run_id, "event_id": event_id})
    else:
        print(f"Reset workflow {execution_.workflow_id} at event {event_id}: new run id {resp.run_id}")
    return 0


# --------------------------------------------------------------------------------------------
# Registration


def register(sub: argparse._SubParsersAction) -> None:
    group = sub.add_parser(
        "workflow", aliases=["wf"], help="start, inspect and act on workflows",
        description="Operate on workflows (mirrors `cadence workflow`).",
    )
    add_group_flags(group)
    gsub = group.add_subparsers(dest="workflow_command", metavar="COMMAND")

    p = leaf(gsub, "start", "start a workflow and print its ids")
    add_start_flags(p)
    p.set_defaults(handler=cmd_start)

    p = leaf(gsub, "run", "start a workflow and wait for its result (exit 1 unless it completes)")
    add_start_flags(p)
    p.add_argument("--timeout", dest="timeout", help="stop waiting after this long (default: execution timeout + 60s)")
    p.set_defaults(handler=cmd_run)

    p = leaf(gsub, "signalwithstart", "signal a workflow, starting it if it is not running")
    add_start_flags(p)
    p.add_argument("--signal_name", "--sn", "--name", "-n", dest="signal_name", help="signal name (required)")
    add_input(p, "--signal_input", "--si", "signal_input", "--sif")
    p.set_defaults(handler=cmd_signal_with_start)

    p = leaf(gsub, "show", "print the history of a run, one line per event")
    add_execution(p)
    add_field_length(p)
    p.add_argument("--event_id", dest="event_id", type=int, help="print this one event in full")
    p.add_argument("--output_filename", "--of", dest="output_filename", help="write the history as JSON to a file")
    p.set_defaults(handler=cmd_show)

    p = leaf(gsub, "observe", "follow the history of a run as events land, until it closes", aliases=["ob"])
    add_execution(p)
    add_field_length(p)
    p.set_defaults(handler=cmd_observe)

    p = leaf(gsub, "describe", "describe a run: status, configuration, pending work", aliases=["desc"])
    add_execution(p)
    p.set_defaults(handler=cmd_describe)

    workflow_list.register(gsub)

    p = leaf(gsub, "query", "query a workflow's state through its worker")
    add_execution(p)
    p.add_argument("--query_type", "--qt", dest="query_type", help="query type (required)")
    add_input(p)
    p.add_argument(
        "--query_reject_condition", "--qrc", dest="query_reject_condition",
        help="reject instead of answering when the workflow is: not_open | not_completed_cleanly",
    )
    p.set_defaults(handler=cmd_query)

    p = leaf(gsub, "signal", "send a signal to a workflow", aliases=["s"])
    add_execution(p)
    p.add_argument("--name", "-n", dest="name", help="signal name (required)")
    add_input(p)
    p.set_defaults(handler=cmd_signal)

    p = leaf(gsub, "cancel", "request cancellation of a workflow", aliases=["c"])
    add_execution(p)
    p.add_argument("--reason", "--re", dest="reason", help="why (recorded as the cancel cause)")
    p.set_defaults(handler=cmd_cancel)

    p = leaf(gsub, "terminate", "terminate a workflow now, without running its code", aliases=["term"])
    add_execution(p)
    p.add_argument("--reason", "--re", dest="reason", help="why (recorded in the history)")
    p.add_argument("--details", "--de", dest="details", help="details, JSON")
    p.set_defaults(handler=cmd_terminate)

    p = leaf(gsub, "reset", "reset a workflow to an earlier decision, as a new run", aliases=["rs"])
    add_execution(p)
    p.add_argument(
        "--event_id", dest="event_id", type=int,
        help="the DecisionTaskCompleted (or Failed/TimedOut) event to reset to",
    )
    p.add_argument("--reset_type", dest="reset_type", help="instead of --event_id: " + " | ".join(RESET_TYPES))
    p.add_argument("--reason", "--re", dest="reason", help="why (required)")
    p.add_argument("--skip_signal_reapply", dest="skip_signal_reapply", action="store_true",
                   help="do not re-apply signals received after the reset point")
    p.set_defaults(handler=cmd_reset)
