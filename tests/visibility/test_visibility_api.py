"""VisibilityAPI over gRPC against a real server process, on visibility rows written by the store.

The rows are written through a second SQLiteStore on the server's database file (the
same `upsert_visibility` the history engine's commits use), so every filter, order,
page and error of the API is checked on known data. Workflows started by the official
client are listed in test_e2e_visibility.py.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta

import grpc
import pytest
from cadence.api.v1 import common_pb2, visibility_pb2, workflow_pb2
from cadence.api.v1 import service_domain_pb2 as domain_pb
from cadence.api.v1 import service_visibility_pb2 as pb
from cadence.api.v1.service_domain_pb2_grpc import DomainAPIStub
from cadence.api.v1.service_visibility_pb2_grpc import VisibilityAPIStub
from google.protobuf.timestamp_pb2 import Timestamp

from cadence_fast.persistence.records import CloseStatus, VisibilityRecord
from cadence_fast.persistence.sqlite.store import SQLiteStore
from tests.conftest import ServerProcess, sqlite_url, unique

S = 1_000_000_000
BASE = 1_700_000_000 * S


def ts(ns: int) -> Timestamp:
    return Timestamp(seconds=ns // S, nanos=ns % S)


class Env:
    def __init__(self, server: ServerProcess, domain: str, domain_id: str, channel: grpc.aio.Channel) -> None:
        self.server = server
        self.domain = domain
        self.domain_id = domain_id
        self.channel = channel
        self.stub = VisibilityAPIStub(channel)


@pytest.fixture(scope="module")
def server_and_rows(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, str, str]]:
    tmp = tmp_path_factory.mktemp("visapi")
    config = tmp / "server.toml"
    config.write_text('[search_attributes]\nEnv = "keyword"\nScore = "double"\n')
    db = tmp / "cadence.db"
    server = ServerProcess(sqlite_url(db), extra=["--config", str(config)], log=tmp / "server.log").start()
    try:
        domain = unique("vis")
        import asyncio

        async def setup() -> str:
            async with grpc.aio.insecure_channel(server.address) as ch:
                req = domain_pb.RegisterDomainRequest(name=domain)
                req.workflow_execution_retention_period.FromTimedelta(timedelta(days=1))
                await DomainAPIStub(ch).RegisterDomain(req, timeout=30)
                resp = await DomainAPIStub(ch).DescribeDomain(
                    domain_pb.DescribeDomainRequest(name=domain), timeout=30
                )
                domain_id = resp.domain.id
            store = SQLiteStore(sqlite_url(db))
            await store.open()
            try:
                for r in _rows(domain_id):
                    await store.upsert_visibility(r)
                # Another domain's row never shows up.
                other = _rows("another-domain-id")[0]
                await store.upsert_visibility(other)
            finally:
                await store.close()
            return domain_id

        domain_id = asyncio.run(setup())
        yield server, domain, domain_id
    finally:
        server.kill()


def _memo(**fields: str) -> bytes:
    memo = common_pb2.Memo()
    for k, v in fields.items():
        memo.fields[k].data = json.dumps(v).encode()
    return memo.SerializeToString()


def _rows(domain_id: str) -> list[VisibilityRecord]:
    rows = []
    # 12 runs: even i closed (status cycles), odd i open; types alternate A/B/C.
    statuses = [CloseStatus.COMPLETED, CloseStatus.FAILED, CloseStatus.TIMED_OUT]
    for i in range(12):
        closed = i % 2 == 0
        rows.append(
            VisibilityRecord(
                domain_id=domain_id,
                workflow_id=f"wf-{i % 4}",
                run_id=f"00000000-0000-0000-0000-{i:012d}",
                workflow_type="ABC"[i % 3],
                start_time=BASE + i * S,
                execution_time=BASE + i * S,
                task_list="tl",
                close_time=BASE + (100 - i) * S if closed else None,
                close_status=statuses[(i // 2) % 3] if closed else None,
                history_length=i + 1,
                is_cron=False,
                memo=_memo(note=f"run {i}"),
                search_attributes={"Env": "prod" if i < 6 else "dev", "CustomDatetimeField": BASE + i * S},
                update_time=BASE,
            )
        )
    return rows


def run_id(i: int) -> str:
    return f"00000000-0000-0000-0000-{i:012d}"


async def _env(server_and_rows: tuple[ServerProcess, str, str]) -> tuple[grpc.aio.Channel, Env]:
    server, domain, domain_id = server_and_rows
    channel = grpc.aio.insecure_channel(server.address)
    return channel, Env(server, domain, domain_id, channel)


def _ids(infos: list[workflow_pb2.WorkflowExecutionInfo]) -> list[int]:
    return [int(i.workflow_execution.run_id[-12:]) for i in infos]


async def _all_pages(call, request, page_size: int) -> list[workflow_pb2.WorkflowExecutionInfo]:  # noqa: ANN001
    out: list[workflow_pb2.WorkflowExecutionInfo] = []
    request.page_size = page_size
    for _ in range(100):
        resp = await call(request, timeout=30)
        assert len(resp.executions) <= page_size
        out.extend(resp.executions)
        if not resp.next_page_token:
            return out
        request.next_page_token = resp.next_page_token
    raise AssertionError("paging did not end")


def _range(request, earliest: int = 0, latest: int = 2**62) -> None:  # noqa: ANN001
    request.start_time_filter.earliest_time.CopyFrom(ts(earliest))
    request.start_time_filter.latest_time.CopyFrom(ts(latest))


async def test_list_open(server_and_rows: tuple[ServerProcess, str, str]) -> None:
    channel, env = await _env(server_and_rows)
    async with channel:
        req = pb.ListOpenWorkflowExecutionsRequest(domain=env.domain)
        _range(req)
        infos = await _all_pages(env.stub.ListOpenWorkflowExecutions, req, 2)
        assert _ids(infos) == [11, 9, 7, 5, 3, 1]  # open runs, newest start first
        first = infos[-1]
        assert first.workflow_execution.workflow_id == "wf-1"
        assert first.type.name == "B"
        assert first.start_time == ts(BASE + 1 * S)
        assert not first.HasField("close_time")
        assert first.close_status == workflow_pb2.WORKFLOW_EXECUTION_CLOSE_STATUS_INVALID
        assert first.task_list == "tl"
        assert first.history_length == 2
        assert json.loads(first.memo.fields["note"].data) == "run 1"
        assert json.loads(first.search_attributes.indexed_fields["Env"].data) == "prod"
        assert json.loads(first.search_attributes.indexed_fields["CustomDatetimeField"].data) == (
            "2023-11-14T22:13:21Z"
        )

        req = pb.ListOpenWorkflowExecutionsRequest(
            domain=env.domain, type_filter=visibility_pb2.WorkflowTypeFilter(name="C")
        )
        _range(req, BASE + 3 * S, BASE + 9 * S)
        assert _ids((await env.stub.ListOpenWorkflowExecutions(req, timeout=30)).executions) == [5]

        req = pb.ListOpenWorkflowExecutionsRequest(
            domain=env.domain, execution_filter=visibility_pb2.WorkflowExecutionFilter(workflow_id="wf-3")
        )
        _range(req)
        assert _ids((await env.stub.ListOpenWorkflowExecutions(req, timeout=30)).executions) == [11, 7, 3]


async def test_list_closed(server_and_rows: tuple[ServerProcess, str, str]) -> None:
    channel, env = await _env(server_and_rows)
    async with channel:
        req = pb.ListClosedWorkflowExecutionsRequest(domain=env.domain)
        _range(req)
        infos = await _all_pages(env.stub.ListClosedWorkflowExecutions, req, 4)
        # Closed runs by close time, newest first (run i closed at 100 - i).
        assert _ids(infos) == [0, 2, 4, 6, 8, 10]
        assert infos[0].close_time == ts(BASE + 100 * S)
        assert infos[0].close_status == workflow_pb2.WORKFLOW_EXECUTION_CLOSE_STATUS_COMPLETED
        assert infos[0].execution_status == workflow_pb2.WORKFLOW_EXECUTION_STATUS_COMPLETED

        # The time range applies to the close time.
        req = pb.ListClosedWorkflowExecutionsRequest(domain=env.domain)
        _range(req, BASE + 93 * S, BASE + 98 * S)
        assert _ids((await env.stub.ListClosedWorkflowExecutions(req, timeout=30)).executions) == [2, 4, 6]

        req = pb.ListClosedWorkflowExecutionsRequest(
            domain=env.domain,
            status_filter=visibility_pb2.StatusFilter(
                status=workflow_pb2.WORKFLOW_EXECUTION_CLOSE_STATUS_FAILED
            ),
        )
        _range(req)
        assert _ids((await env.stub.ListClosedWorkflowExecutions(req, timeout=30)).executions) == [2, 8]

        req = pb.ListClosedWorkflowExecutionsRequest(
            domain=env.domain, type_filter=visibility_pb2.WorkflowTypeFilter(name="A")
        )
        _range(req)
        assert _ids((await env.stub.ListClosedWorkflowExecutions(req, timeout=30)).executions) == [0, 6]


async def test_list_count_scan_with_query(server_and_rows: tuple[ServerProcess, str, str]) -> None:
    channel, env = await _env(server_and_rows)
    async with channel:
        cases = {
            "": list(range(11, -1, -1)),
            "WorkflowType = 'A'": [9, 6, 3, 0],
            "CloseTime = missing AND Env = 'dev'": [11, 9, 7],
            "CloseStatus = 'Failed' OR CloseStatus = 'TIMED_OUT'": [10, 8, 4, 2],
            "WorkflowID IN ('wf-0', 'wf-2') ORDER BY StartTime ASC": [0, 2, 4, 6, 8, 10],
            "HistoryLength BETWEEN 3 AND 5 ORDER BY HistoryLength DESC": [4, 3, 2],
            "CustomDatetimeField >= '2023-11-14T22:13:30Z'": [11, 10],
            "ORDER BY CloseTime DESC": [0, 2, 4, 6, 8, 10, 11, 9, 7, 5, 3, 1],
        }
        for query, expected in cases.items():
            listed = await _all_pages(
                env.stub.ListWorkflowExecutions,
                pb.ListWorkflowExecutionsRequest(domain=env.domain, query=query),
                5,
            )
            assert _ids(listed) == expected, query
            scanned = await _all_pages(
                env.stub.ScanWorkflowExecutions,
                pb.ScanWorkflowExecutionsRequest(domain=env.domain, query=query),
                3,
            )
            assert sorted(_ids(scanned)) == sorted(expected), query
            count = await env.stub.CountWorkflowExecutions(
                pb.CountWorkflowExecutionsRequest(domain=env.domain, query=query), timeout=30
            )
            assert count.count == len(expected), query
        # page_size 0 means Cadence's default page (everything here, one page).
        resp = await env.stub.ListWorkflowExecutions(
            pb.ListWorkflowExecutionsRequest(domain=env.domain), timeout=30
        )
        assert len(resp.executions) == 12 and not resp.next_page_token


async def test_get_search_attributes(server_and_rows: tuple[ServerProcess, str, str]) -> None:
    channel, env = await _env(server_and_rows)
    async with channel:
        keys = (await env.stub.GetSearchAttributes(pb.GetSearchAttributesRequest(), timeout=30)).keys
        assert keys["Env"] == visibility_pb2.INDEXED_VALUE_TYPE_KEYWORD
        assert keys["Score"] == visibility_pb2.INDEXED_VALUE_TYPE_DOUBLE
        assert keys["CustomIntField"] == visibility_pb2.INDEXED_VALUE_TYPE_INT
        assert keys["CustomDatetimeField"] == visibility_pb2.INDEXED_VALUE_TYPE_DATETIME
        assert keys["CadenceChangeVersion"] == visibility_pb2.INDEXED_VALUE_TYPE_KEYWORD
        assert keys["WorkflowType"] == visibility_pb2.INDEXED_VALUE_TYPE_KEYWORD
        assert keys["StartTime"] == visibility_pb2.INDEXED_VALUE_TYPE_DATETIME
        assert keys["CloseStatus"] == visibility_pb2.INDEXED_VALUE_TYPE_INT


async def _expect(call, request, code: grpc.StatusCode, message: str) -> None:  # noqa: ANN001
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call(request, timeout=30)
    assert info.value.code() == code, info.value.details()
    assert message in (info.value.details() or ""), info.value.details()


async def test_errors(server_and_rows: tuple[ServerProcess, str, str]) -> None:
    channel, env = await _env(server_and_rows)
    bad = grpc.StatusCode.INVALID_ARGUMENT
    async with channel:
        s = env.stub
        await _expect(
            s.ListWorkflowExecutions,
            pb.ListWorkflowExecutionsRequest(domain=env.domain, query="Nope = 1"),
            bad,
            "unknown search attribute 'Nope'",
        )
        await _expect(
            s.CountWorkflowExecutions,
            pb.CountWorkflowExecutionsRequest(domain=env.domain, query="WorkflowID = "),
            bad,
            "expected a value for WorkflowID",
        )
        await _expect(
            s.ScanWorkflowExecutions,
            pb.ScanWorkflowExecutionsRequest(domain=env.domain, query="StartTime > 'soon'"),
            bad,
            "StartTime is a time",
        )
        await _expect(
            s.ListWorkflowExecutions,
            pb.ListWorkflowExecutionsRequest(domain=env.domain, next_page_token=b"forged"),
            bad,
            "next_page_token",
        )
        await _expect(
            s.ListWorkflowExecutions,
            pb.ListWorkflowExecutionsRequest(domain=env.domain, page_size=1_000_000),
            bad,
            "page_size",
        )
        await _expect(s.ListWorkflowExecutions, pb.ListWorkflowExecutionsRequest(), bad, "Domain")
        await _expect(
            s.ListWorkflowExecutions,
            pb.ListWorkflowExecutionsRequest(domain=unique("nowhere")),
            grpc.StatusCode.NOT_FOUND,
            "",
        )
        await _expect(
            s.ListOpenWorkflowExecutions,
            pb.ListOpenWorkflowExecutionsRequest(domain=env.domain),
            bad,
            "StartTimeFilter is required",
        )
        req = pb.ListOpenWorkflowExecutionsRequest(domain=env.domain)
        _range(req, 10, 5)
        await _expect(
            s.ListOpenWorkflowExecutions, req, bad, "EarliestTime in StartTimeFilter should not be larger"
        )
        req = pb.ListOpenWorkflowExecutionsRequest(
            domain=env.domain, execution_filter=visibility_pb2.WorkflowExecutionFilter(run_id="x")
        )
        _range(req)
        await _expect(s.ListOpenWorkflowExecutions, req, bad, "WorkflowID is not set on ExecutionFilter")
        await _expect(
            s.ListArchivedWorkflowExecutions,
            pb.ListArchivedWorkflowExecutionsRequest(domain=env.domain, query=""),
            bad,
            "archival",
        )
