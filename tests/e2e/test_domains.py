"""DomainAPI end to end: a real server process, the official client and its error mapping."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from datetime import timedelta

import grpc
import pytest
from cadence.api.v1 import common_pb2, domain_pb2
from cadence.api.v1 import service_domain_pb2 as pb
from cadence.api.v1 import service_schedule_pb2 as schedule_pb
from cadence.api.v1 import service_workflow_pb2 as workflow_pb
from cadence.api.v1.service_schedule_pb2_grpc import ScheduleAPIStub
from cadence.client import Client
from cadence.error import CadenceRpcError, DomainAlreadyExistsError, EntityNotExistsError
from google.protobuf import field_mask_pb2

from tests.conftest import ServerProcess, unique

#: The `server_factory` fixture: ServerProcess's arguments, with the store optional.
ServerFactory = Callable[..., ServerProcess]

DAY = timedelta(days=1)


def register_request(name: str, days: int = 1, **kw: object) -> pb.RegisterDomainRequest:
    request = pb.RegisterDomainRequest(name=name, **kw)  # type: ignore[arg-type]
    request.workflow_execution_retention_period.FromTimedelta(timedelta(days=days))
    return request


def update_request(name: str, paths: list[str], **kw: object) -> pb.UpdateDomainRequest:
    request = pb.UpdateDomainRequest(name=name, **kw)  # type: ignore[arg-type]
    request.update_mask.CopyFrom(field_mask_pb2.FieldMask(paths=paths))
    return request


async def describe(client: Client, name: str) -> domain_pb2.Domain:
    return (await client.domain_stub.DescribeDomain(pb.DescribeDomainRequest(name=name))).domain


async def all_domains(client: Client, page_size: int) -> list[domain_pb2.Domain]:
    out: list[domain_pb2.Domain] = []
    token = b""
    while True:
        resp = await client.domain_stub.ListDomains(
            pb.ListDomainsRequest(page_size=page_size, next_page_token=token)
        )
        assert len(resp.domains) <= page_size
        out.extend(resp.domains)
        token = resp.next_page_token
        if not token:
            return out


async def test_domain_lifecycle(server: ServerProcess) -> None:
    name = unique("life")
    async with Client(domain=name, target=server.address) as client:
        stub = client.domain_stub
        await stub.RegisterDomain(
            register_request(
                name,
                days=2,
                description="orders",
                owner_email="team@example.com",
                data={"team": "a", "tier": "1"},
            )
        )

        by_name = await describe(client, name)
        assert by_name.name == name
        assert by_name.id
        assert by_name.status == domain_pb2.DOMAIN_STATUS_REGISTERED
        assert by_name.description == "orders"
        assert by_name.owner_email == "team@example.com"
        assert dict(by_name.data) == {"team": "a", "tier": "1"}
        assert by_name.workflow_execution_retention_period.ToTimedelta() == timedelta(days=2)
        assert by_name.active_cluster_name == "cluster0"
        assert [c.cluster_name for c in by_name.clusters] == ["cluster0"]

        by_id = (await stub.DescribeDomain(pb.DescribeDomainRequest(id=by_name.id))).domain
        assert by_id == by_name

        # Paged listing returns every domain exactly once, ours among them.
        await stub.RegisterDomain(register_request(unique("life-other")))
        listed = await all_domains(client, page_size=1)
        names = [d.name for d in listed]
        assert len(names) == len(set(names)) >= 2
        assert [d for d in listed if d.name == name] == [by_name]

        updated = (
            await stub.UpdateDomain(
                update_request(
                    name,
                    ["description", "data", "workflow_execution_retention_period"],
                    description="orders v2",
                    data={"tier": "2", "region": "eu"},
                    workflow_execution_retention_period=timedelta(days=7),
                )
            )
        ).domain
        after = await describe(client, name)
        assert updated == after
        assert after.description == "orders v2"
        assert after.owner_email == "team@example.com"  # not in the mask: unchanged
        assert dict(after.data) == {"team": "a", "tier": "2", "region": "eu"}  # merged, as Go Cadence
        assert after.workflow_execution_retention_period.ToTimedelta() == timedelta(days=7)

        await stub.DeprecateDomain(pb.DeprecateDomainRequest(name=name))
        assert (await describe(client, name)).status == domain_pb2.DOMAIN_STATUS_DEPRECATED

        await stub.DeleteDomain(pb.DeleteDomainRequest(name=name))
        with pytest.raises(EntityNotExistsError):
            await describe(client, name)
        assert name not in [d.name for d in await all_domains(client, page_size=100)]


async def test_duplicate_register_raises_domain_already_exists(server: ServerProcess) -> None:
    name = unique("dup")
    async with Client(domain=name, target=server.address) as client:
        await client.domain_stub.RegisterDomain(register_request(name, description="first"))
        with pytest.raises(DomainAlreadyExistsError):
            await client.domain_stub.RegisterDomain(register_request(name, description="second"))
        assert (await describe(client, name)).description == "first"


async def test_describe_missing_raises_entity_not_exists(server: ServerProcess) -> None:
    async with Client(domain="x", target=server.address) as client:
        with pytest.raises(EntityNotExistsError, match="does not exist"):
            await describe(client, unique("missing"))
        with pytest.raises(EntityNotExistsError):
            await client.domain_stub.DescribeDomain(
                pb.DescribeDomainRequest(id="00000000-0000-0000-0000-000000000000")
            )
        with pytest.raises(CadenceRpcError) as err:
            await client.domain_stub.DescribeDomain(pb.DescribeDomainRequest())
        assert err.value.code == grpc.StatusCode.INVALID_ARGUMENT
        assert "name" in str(err.value)


@pytest.mark.parametrize(
    ("name", "days", "field"),
    [
        ("", 1, "name"),
        ("n" * 1001, 1, "name"),
        ("bad name!", 1, "name"),
        ("-leading-dash", 1, "name"),
        (None, 0, "workflow_execution_retention_period"),
        (None, -1, "workflow_execution_retention_period"),
        (None, 31, "workflow_execution_retention_period"),
        (None, 10_000, "workflow_execution_retention_period"),
    ],
)
async def test_bad_register_is_invalid_argument_and_stores_nothing(
    server: ServerProcess, name: str | None, days: int, field: str
) -> None:
    name = unique("bad") if name is None else name
    async with Client(domain="x", target=server.address) as client:
        before = await all_domains(client, page_size=1000)
        with pytest.raises(CadenceRpcError) as err:
            await client.domain_stub.RegisterDomain(register_request(name, days=days))
        assert type(err.value) is CadenceRpcError
        assert err.value.code == grpc.StatusCode.INVALID_ARGUMENT
        assert field in str(err.value)
        assert await all_domains(client, page_size=1000) == before


async def test_register_refuses_other_clusters_and_archival(server: ServerProcess) -> None:
    async with Client(domain="x", target=server.address) as client:
        for request, field in [
            (register_request(unique("c"), active_cluster_name="cluster1"), "active_cluster_name"),
            (
                register_request(unique("c"), history_archival_status=domain_pb2.ARCHIVAL_STATUS_ENABLED),
                "history_archival_status",
            ),
        ]:
            with pytest.raises(CadenceRpcError) as err:
                await client.domain_stub.RegisterDomain(request)
            assert err.value.code == grpc.StatusCode.INVALID_ARGUMENT
            assert field in str(err.value)
            with pytest.raises(EntityNotExistsError):
                await describe(client, request.name)
        # The single cluster by name, and a global domain, are accepted.
        name = unique("global")
        await client.domain_stub.RegisterDomain(
            register_request(name, active_cluster_name="cluster0", is_global_domain=True)
        )
        assert (await describe(client, name)).is_global_domain


@pytest.mark.parametrize(
    ("paths", "values", "field"),
    [
        (["description", "no_such_field"], {"description": "changed"}, "no_such_field"),
        (
            ["description", "workflow_execution_retention_period"],
            {"description": "changed", "workflow_execution_retention_period": timedelta(days=-1)},
            "workflow_execution_retention_period",
        ),
        (
            ["description", "workflow_execution_retention_period"],
            {"description": "changed", "workflow_execution_retention_period": timedelta(days=45)},
            "workflow_execution_retention_period",
        ),
        (["active_cluster_name"], {"active_cluster_name": "cluster9"}, "active_cluster_name"),
    ],
)
async def test_bad_update_is_invalid_argument_and_changes_nothing(
    server: ServerProcess, paths: list[str], values: dict[str, object], field: str
) -> None:
    name = unique("upd")
    async with Client(domain=name, target=server.address) as client:
        await client.domain_stub.RegisterDomain(register_request(name, description="original"))
        before = await describe(client, name)
        with pytest.raises(CadenceRpcError) as err:
            await client.domain_stub.UpdateDomain(update_request(name, paths, **values))
        assert err.value.code == grpc.StatusCode.INVALID_ARGUMENT
        assert field in str(err.value)
        assert await describe(client, name) == before


async def test_update_bad_binaries_and_missing_domain(server: ServerProcess) -> None:
    name = unique("bin")
    async with Client(domain=name, target=server.address) as client:
        stub = client.domain_stub
        await stub.RegisterDomain(register_request(name))
        request = update_request(name, ["bad_binaries"])
        request.bad_binaries.binaries["abc123"].reason = "crashes"
        domain = (await stub.UpdateDomain(request)).domain
        assert domain.bad_binaries.binaries["abc123"].reason == "crashes"
        assert domain.bad_binaries.binaries["abc123"].HasField("created_time")
        domain = (
            await stub.UpdateDomain(update_request(name, ["delete_bad_binary"], delete_bad_binary="abc123"))
        ).domain
        assert "abc123" not in domain.bad_binaries.binaries
        with pytest.raises(EntityNotExistsError):
            await stub.UpdateDomain(update_request(unique("nope"), ["description"], description="x"))


async def test_delete_requires_deprecation(server: ServerProcess) -> None:
    name = unique("del")
    async with Client(domain=name, target=server.address) as client:
        stub = client.domain_stub
        await stub.RegisterDomain(register_request(name))
        with pytest.raises(CadenceRpcError) as err:
            await stub.DeleteDomain(pb.DeleteDomainRequest(name=name))
        assert err.value.code == grpc.StatusCode.INVALID_ARGUMENT
        assert "deprecate" in str(err.value)
        assert (await describe(client, name)).status == domain_pb2.DOMAIN_STATUS_REGISTERED
        with pytest.raises(EntityNotExistsError):
            await stub.DeprecateDomain(pb.DeprecateDomainRequest(name=unique("nope")))


async def test_deprecated_domain_refuses_new_workflows(server: ServerProcess) -> None:
    name = unique("old")
    async with Client(domain=name, target=server.address) as client:
        await client.domain_stub.RegisterDomain(register_request(name))
        await client.domain_stub.DeprecateDomain(pb.DeprecateDomainRequest(name=name))
        with pytest.raises(CadenceRpcError) as err:
            await client.start_workflow(
                "SomeWorkflow", task_list="tl", execution_start_to_close_timeout=timedelta(minutes=1)
            )
        assert err.value.code == grpc.StatusCode.INVALID_ARGUMENT
        assert "deprecated" in str(err.value)


async def test_failover_and_failover_history_on_a_single_cluster(server: ServerProcess) -> None:
    name = unique("fo")
    async with Client(domain=name, target=server.address) as client:
        stub = client.domain_stub
        await stub.RegisterDomain(register_request(name))
        with pytest.raises(CadenceRpcError) as err:
            await stub.FailoverDomain(
                pb.FailoverDomainRequest(domain_name=name, domain_active_cluster_name="cluster1")
            )
        assert err.value.code == grpc.StatusCode.INVALID_ARGUMENT
        assert "cluster0" in str(err.value)
        assert (await describe(client, name)).active_cluster_name == "cluster0"
        history = await stub.ListFailoverHistory(pb.ListFailoverHistoryRequest())
        assert list(history.failover_events) == []


async def test_unbuilt_method_answers_unimplemented_naming_it(server: ServerProcess) -> None:
    async with grpc.aio.insecure_channel(server.address) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await ScheduleAPIStub(channel).CreateSchedule(
                schedule_pb.CreateScheduleRequest(domain="d"), timeout=10
            )
    assert err.value.code() == grpc.StatusCode.UNIMPLEMENTED
    assert "CreateSchedule" in (err.value.details() or "")


async def test_domain_survives_a_restart(server_factory: ServerFactory) -> None:
    proc = server_factory().start()
    name = unique("durable")
    async with Client(domain=name, target=proc.address) as client:
        await client.domain_stub.RegisterDomain(register_request(name, days=3, description="kept"))
        registered = await describe(client, name)
    assert proc.stop() == 0
    proc.start()
    async with Client(domain=name, target=proc.address) as client:
        assert await describe(client, name) == registered
        # Updates after the restart land too: the cache was loaded from the store.
        await client.domain_stub.DeprecateDomain(pb.DeprecateDomainRequest(name=name))
        assert (await describe(client, name)).status == domain_pb2.DOMAIN_STATUS_DEPRECATED


async def test_other_process_sees_domain_changes_through_the_metadata_version(
    server_factory: ServerFactory,
) -> None:
    """Two servers on one SQLite file: B's cache follows A's writes without B being told."""
    a = server_factory().start()
    b = server_factory(store=a.store).start()
    name = unique("shared")
    async with Client(domain=name, target=a.address) as ca, Client(domain=name, target=b.address) as cb:
        await ca.domain_stub.RegisterDomain(register_request(name))
        assert (await describe(cb, name)).name == name
        # B resolves the domain through its cache (the outcome of the call does not matter).
        with contextlib.suppress(CadenceRpcError):
            await cb.workflow_stub.DescribeWorkflowExecution(
                workflow_pb.DescribeWorkflowExecutionRequest(
                    domain=name, workflow_execution=common_pb2.WorkflowExecution(workflow_id="nope")
                )
            )
        await ca.domain_stub.DeprecateDomain(pb.DeprecateDomainRequest(name=name))
        # B's cache polls the store's metadata version; until it has seen the change a start
        # may still go through. Bounded wait, no timing assertion.
        deadline = time.monotonic() + 30
        refused: CadenceRpcError | None = None
        while refused is None and time.monotonic() < deadline:
            try:
                await cb.start_workflow(
                    "W", task_list="tl", execution_start_to_close_timeout=timedelta(minutes=1)
                )
            except CadenceRpcError as e:
                if "deprecated" in str(e):
                    refused = e
            await asyncio.sleep(0.2)
        assert refused is not None, "server B never noticed the deprecation"
        assert refused.code == grpc.StatusCode.INVALID_ARGUMENT


async def test_list_domains_rejects_a_bad_page_request(server: ServerProcess) -> None:
    async with Client(domain="x", target=server.address) as client:
        for request, field in [
            (pb.ListDomainsRequest(page_size=-1), "page_size"),
            (pb.ListDomainsRequest(page_size=10, next_page_token=b"\xff\xfe not a token"), "next_page_token"),
        ]:
            with pytest.raises(CadenceRpcError) as err:
                await client.domain_stub.ListDomains(request)
            assert err.value.code == grpc.StatusCode.INVALID_ARGUMENT
            assert field in str(err.value)
