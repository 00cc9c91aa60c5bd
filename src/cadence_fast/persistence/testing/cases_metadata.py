"""Conformance cases: schema, domains (and the metadata version), shards and fencing."""

from __future__ import annotations

import asyncio

import pytest

from cadence_fast.persistence.errors import (
    AlreadyExists,
    ConditionFailed,
    NotFound,
    ShardOwnershipLost,
)
from cadence_fast.persistence.records import (
    DomainRecord,
    ShardRecord,
)
from cadence_fast.persistence.registry import create_store
from cadence_fast.persistence.store import Store
from cadence_fast.persistence.testing.checks import absent, needs_shared_database
from cadence_fast.persistence.testing.factories import (
    create_op,
    new_shard_id,
    owned_shard,
    uid,
    update_op,
)

# --- schema ------------------------------------------------------------------------------


class TestSchema:
    async def test_version_recorded(self, store: Store) -> None:
        assert await store.schema_version() == store.schema_version_expected

    async def test_setup_is_idempotent(self, store: Store) -> None:
        assert await store.setup_schema() == store.schema_version_expected
        assert await store.schema_version() == store.schema_version_expected

    async def test_unopened_store_reports_and_sets_up(self, store: Store, store_url: str) -> None:
        """`cadence-fast schema version|setup` call these on a store that is not open."""
        needs_shared_database(store_url)
        unopened = create_store(store_url)
        assert await unopened.schema_version() == store.schema_version_expected
        assert await unopened.setup_schema() == store.schema_version_expected


# --- domains -----------------------------------------------------------------------------


def _domain(name: str | None = None, **kw: object) -> DomainRecord:
    fields: dict[str, object] = {
        "domain_id": uid(),
        "name": name or uid("kit-domain-"),
        "status": 0,
        "data": b"d1",
    }
    fields.update(kw)
    return DomainRecord(**fields)  # type: ignore[arg-type]


class TestDomains:
    async def test_create_then_get_by_id_and_name(self, store: Store) -> None:
        d = _domain(data=b"\x00binary\xffdata")
        version = await store.create_domain(d)
        assert version > 0 and d.notification_version == version
        for got in (await store.get_domain(domain_id=d.domain_id), await store.get_domain(name=d.name)):
            assert (got.domain_id, got.name, got.status, got.data) == (d.domain_id, d.name, 0, d.data)
            assert got.notification_version == version

    async def test_duplicate_name_or_id(self, store: Store) -> None:
        d = _domain()
        await store.create_domain(d)
        version = await store.get_metadata_version()
        with pytest.raises(AlreadyExists):
            await store.create_domain(_domain(d.name))
        with pytest.raises(AlreadyExists):
            await store.create_domain(_domain(domain_id=d.domain_id))
        assert (await store.get_domain(name=d.name)).domain_id == d.domain_id
        assert await store.get_metadata_version() == version, "a failed create must not bump the version"

    async def test_get_missing(self, store: Store) -> None:
        with pytest.raises(NotFound):
            await store.get_domain(domain_id=uid())
        with pytest.raises(NotFound):
            await store.get_domain(name=uid("missing-"))

    async def test_update_replaces_status_and_data(self, store: Store) -> None:
        d = _domain()
        v1 = await store.create_domain(d)
        d.status, d.data = 1, b"d2"
        v2 = await store.update_domain(d)
        assert v2 > v1 and await store.get_metadata_version() == v2
        got = await store.get_domain(name=d.name)
        assert (got.status, got.data, got.notification_version) == (1, b"d2", v2)
        with pytest.raises(NotFound):
            await store.update_domain(_domain())

    async def test_delete(self, store: Store) -> None:
        d = _domain()
        v1 = await store.create_domain(d)
        await store.delete_domain(d.domain_id)
        assert await store.get_metadata_version() > v1
        with pytest.raises(NotFound):
            await store.get_domain(domain_id=d.domain_id)
        with pytest.raises(NotFound):
            await store.get_domain(name=d.name)
        with pytest.raises(NotFound):
            await store.delete_domain(d.domain_id)
        await store.create_domain(_domain(d.name))  # the name is free again

    async def test_list_pages_in_name_order(self, store: Store) -> None:
        prefix = uid("kit-list-")
        names = [f"{prefix}-{i}" for i in (3, 0, 4, 1, 2)]
        for n in names:
            await store.create_domain(_domain(n))
        seen: list[str] = []
        token: bytes | None = None
        pages = 0
        while True:
            page, token = await store.list_domains(2, token)
            assert len(page) <= 2
            seen.extend(d.name for d in page)
            pages += 1
            if token is None:
                break
            assert pages < 1000
        assert seen == sorted(seen), "domains come ordered by name"
        assert [n for n in seen if n.startswith(prefix)] == sorted(names)
        everything, token = await store.list_domains(0, None)
        assert token is None and [d.name for d in everything] == seen

    async def test_metadata_version_bumps_on_every_write(self, store: Store) -> None:
        d = _domain()
        v0 = await store.get_metadata_version()
        v1 = await store.create_domain(d)
        v2 = await store.update_domain(d)
        await store.delete_domain(d.domain_id)
        v3 = await store.get_metadata_version()
        assert v0 < v1 < v2 < v3

    # --- shards ------------------------------------------------------------------------------

    async def test_concurrent_creates_of_one_name_one_wins(self, store: Store) -> None:
        name = uid("kit-race-")
        results = await asyncio.gather(
            *(store.create_domain(_domain(name)) for _ in range(6)), return_exceptions=True
        )
        assert sum(isinstance(r, int) for r in results) == 1, results
        assert all(isinstance(r, AlreadyExists) for r in results if not isinstance(r, int)), results


class TestShards:
    async def test_get_or_create(self, store: Store) -> None:
        sid = new_shard_id()
        shard = await store.get_or_create_shard(sid)
        assert (shard.shard_id, shard.range_id) == (sid, 0)
        again = await store.get_or_create_shard(sid)
        assert (again.shard_id, again.range_id) == (sid, 0)

    async def test_concurrent_get_or_create(self, store: Store) -> None:
        sid = new_shard_id()
        shards = await asyncio.gather(*(store.get_or_create_shard(sid) for _ in range(6)))
        assert {(s.shard_id, s.range_id) for s in shards} == {(sid, 0)}

    async def test_concurrent_takeovers_one_wins(self, store: Store) -> None:
        """Hosts racing to own a shard from the same range_id: exactly one succeeds."""
        sid = new_shard_id()
        base = await store.get_or_create_shard(sid)

        async def take(owner: str) -> str:
            shard = await store.get_or_create_shard(sid)
            shard.range_id, shard.owner = base.range_id + 1, owner
            await store.update_shard(shard, base.range_id)
            return owner

        results = await asyncio.gather(*(take(f"host-{i}") for i in range(5)), return_exceptions=True)
        winners = [r for r in results if isinstance(r, str)]
        assert len(winners) == 1, results
        assert all(isinstance(r, ShardOwnershipLost) for r in results if not isinstance(r, str)), results
        assert (await store.get_or_create_shard(sid)).owner == winners[0]

    async def test_update_with_range_condition(self, store: Store) -> None:
        sid = new_shard_id()
        shard = await store.get_or_create_shard(sid)
        shard.range_id, shard.owner = 1, "host-a"
        shard.transfer_ack_level, shard.timer_ack_level, shard.data = 42, 1_700_000_000_000_000_000, b"extra"
        await store.update_shard(shard, 0)
        got = await store.get_or_create_shard(sid)
        assert (got.range_id, got.owner, got.transfer_ack_level, got.timer_ack_level, got.data) == (
            1,
            "host-a",
            42,
            1_700_000_000_000_000_000,
            b"extra",
        )
        stale = await store.get_or_create_shard(sid)
        stale.range_id, stale.owner = 7, "host-b"
        with pytest.raises(ShardOwnershipLost):
            await store.update_shard(stale, 0)
        assert (await store.get_or_create_shard(sid)).owner == "host-a"

    async def test_two_owners_fencing(self, store: Store) -> None:
        """A owns at r; B bumps to r+1; everything A writes after that fails and is invisible."""
        sid, range_a = await owned_shard(store, owner="host-a")
        domain = uid()
        before = create_op(domain, uid("wf-"))
        assert await store.commit(sid, range_a, [before]) == [None]

        b = await store.get_or_create_shard(sid)
        b.range_id, b.owner = range_a + 1, "host-b"
        await store.update_shard(b, range_a)

        late = create_op(domain, uid("wf-"), transfer=[], with_visibility=False)
        with pytest.raises(ShardOwnershipLost):
            await store.commit(sid, range_a, [late])
        with pytest.raises(ShardOwnershipLost):
            await store.commit(sid, range_a, [update_op(before)])
        s = late.snapshot
        await absent(store, sid, domain, s.workflow_id, s.run_id)
        with pytest.raises(NotFound):
            await store.get_current_execution(sid, domain, s.workflow_id)
        got = await store.get_execution(sid, domain, before.snapshot.workflow_id, before.snapshot.run_id)
        assert got.next_event_id == before.snapshot.next_event_id, "A's stale update must not land"
        # A cannot take the shard back with its old range either.
        a = await store.get_or_create_shard(sid)
        a.range_id, a.owner = range_a + 1, "host-a"
        with pytest.raises(ShardOwnershipLost):
            await store.update_shard(a, range_a)
        # B, the owner now, writes fine.
        assert await store.commit(sid, range_a + 1, [update_op(before)]) == [None]

    async def test_takeover_racing_commits_of_the_old_owner(self, store: Store) -> None:
        """Commits of A racing B's takeover (a store may group them into one transaction, in
        any order): each lands whole or fails ShardOwnershipLost leaving no trace; once the
        takeover is done, A's range_id is refused and B's accepted, in one call after another."""
        sid, range_a = await owned_shard(store, owner="host-a")
        domain = uid()
        b = await store.get_or_create_shard(sid)
        b.range_id, b.owner = range_a + 1, "host-b"
        ops = [create_op(domain, uid("wf-")) for _ in range(4)]
        results = await asyncio.gather(
            store.commit(sid, range_a, [ops[0]]),
            store.update_shard(b, range_a),
            store.commit(sid, range_a, [ops[1]]),
            store.commit(sid, range_a, [ops[2]]),
            return_exceptions=True,
        )
        assert results[1] is None, results
        for op, result in zip((ops[0], ops[1], ops[2]), (results[0], results[2], results[3]), strict=True):
            s = op.snapshot
            if result == [None]:
                assert (await store.get_execution(sid, domain, s.workflow_id, s.run_id)).next_event_id == 3
            else:
                assert isinstance(result, ShardOwnershipLost), results
                await absent(store, sid, domain, s.workflow_id, s.run_id)
        late, own = create_op(domain, uid("wf-")), ops[3]
        with pytest.raises(ShardOwnershipLost):
            await store.commit(sid, range_a, [late])
        assert await store.commit(sid, range_a + 1, [own]) == [None]
        with pytest.raises(ShardOwnershipLost):
            await store.commit(sid, range_a, [update_op(own)])
        await absent(store, sid, domain, late.snapshot.workflow_id, late.snapshot.run_id)

    async def test_update_of_unknown_shard(self, store: Store) -> None:
        with pytest.raises(ShardOwnershipLost):
            await store.update_shard(ShardRecord(new_shard_id(), 1, "host-a"), 0)

    async def test_two_hosts_on_one_database(self, store: Store, store_url: str) -> None:
        """Fencing and one-winner updates between two open stores (two server processes)."""
        needs_shared_database(store_url)
        host_b = create_store(store_url)
        await host_b.open()
        try:
            sid, range_a = await owned_shard(store, owner="host-a")
            domain, wf = uid(), uid("wf-")
            op = create_op(domain, wf)
            assert await store.commit(sid, range_a, [op]) == [None]
            # Both hosts race one transition of the run: exactly one wins.
            results = await asyncio.gather(
                store.commit(sid, range_a, [update_op(op, info=b"by a")]),
                host_b.commit(sid, range_a, [update_op(op, info=b"by b")]),
            )
            assert sorted(r[0] is None for r in results) == [False, True], results
            loser = results[0][0] if results[0][0] is not None else results[1][0]
            assert isinstance(loser, ConditionFailed)
            # B takes the shard; A is fenced out and nothing A writes afterwards is visible.
            shard = await host_b.get_or_create_shard(sid)
            assert shard.range_id == range_a
            shard.range_id, shard.owner = range_a + 1, "host-b"
            await host_b.update_shard(shard, range_a)
            late = create_op(domain, uid("wf-"))
            with pytest.raises(ShardOwnershipLost):
                await store.commit(sid, range_a, [late, update_op(op, condition=5)])
            for reader in (store, host_b):
                await absent(reader, sid, domain, late.snapshot.workflow_id, late.snapshot.run_id)
                assert (await reader.get_execution(sid, domain, wf, op.snapshot.run_id)).next_event_id == 5
            assert await host_b.commit(sid, range_a + 1, [update_op(op, condition=5)]) == [None]
            assert (await store.get_execution(sid, domain, wf, op.snapshot.run_id)).next_event_id == 7
        finally:
            await host_b.close()

    async def test_commit_on_unknown_shard(self, store: Store) -> None:
        op = create_op(uid(), uid("wf-"))
        with pytest.raises(ShardOwnershipLost):
            await store.commit(new_shard_id(), 1, [op])
