"""What only the SQLite adapter does: URLs, opening files, schema versions, group commit, crashes."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from cadence_fast.persistence import create_store
from cadence_fast.persistence.errors import ConditionFailed, SchemaError, ShardOwnershipLost, StoreError
from cadence_fast.persistence.sqlite.store import MEMORY, SQLiteStore, options_of, path_of
from cadence_fast.persistence.testing.checks import absent
from cadence_fast.persistence.testing.factories import batch, create_op, owned_shard, uid, update_op


def test_url_forms() -> None:
    assert path_of("sqlite:///relative/dir/x.db") == "relative/dir/x.db"
    assert path_of("sqlite:////abs/x.db") == "/abs/x.db"
    assert path_of("sqlite:///with%20space.db") == "with space.db"
    assert path_of("sqlite://:memory:") == MEMORY
    for bad in ("sqlite://", "sqlite:///", "sqlite://host/x.db"):
        with pytest.raises(StoreError, match="sqlite:///PATH or sqlite://:memory:"):
            path_of(bad)
    assert isinstance(create_store("sqlite:///x.db"), SQLiteStore)


async def test_url_options() -> None:
    assert options_of("sqlite:///x.db") == {"synchronous": "full"}
    assert options_of("sqlite:///x.db?synchronous=NORMAL") == {"synchronous": "normal"}
    # Bad URLs fail on open (and on the schema calls), with a StoreError naming the problem.
    with pytest.raises(StoreError, match="unknown sqlite URL option 'journal'"):
        await create_store("sqlite:///x.db?journal=off").open(create_schema=True)
    with pytest.raises(StoreError, match="synchronous='sometimes'"):
        await create_store("sqlite:///x.db?synchronous=sometimes").schema_version()
    with pytest.raises(StoreError, match="sqlite:///PATH or sqlite://:memory:"):
        await create_store("sqlite://host/x.db").setup_schema()


async def test_synchronous_option_reaches_the_connection(tmp_path: Path) -> None:
    store = create_store(f"sqlite:///{tmp_path}/n.db?synchronous=normal")
    assert isinstance(store, SQLiteStore)
    await store.open(create_schema=True)
    level = await store._read(lambda c: c.execute("PRAGMA synchronous").fetchone()[0])
    assert level == 1  # NORMAL
    await store.close()
    store = create_store(f"sqlite:///{tmp_path}/n.db")
    assert isinstance(store, SQLiteStore)
    await store.open()
    assert await store._read(lambda c: c.execute("PRAGMA synchronous").fetchone()[0]) == 2  # FULL
    await store.close()


async def test_relative_path_is_relative_to_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    store = create_store("sqlite:///sub.db")
    await store.open(create_schema=True)
    await store.close()
    assert (tmp_path / "sub.db").is_file()


async def test_file_is_wal_with_full_sync_and_survives_reopen(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/a.db"
    store = create_store(url)
    await store.open(create_schema=True)
    sid, rng = await owned_shard(store)
    op = create_op(uid(), uid("wf-"))
    await store.commit(sid, rng, [op])
    await store.close()
    with sqlite3.connect(tmp_path / "a.db") as raw:
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    again = create_store(url)
    await again.open()  # no create_schema needed: the schema is there
    got = await again.get_execution(sid, op.snapshot.domain_id, op.snapshot.workflow_id, op.snapshot.run_id)
    assert got.info == op.snapshot.info
    assert (await again.get_or_create_shard(sid)).range_id == rng
    await again.close()


async def test_a_directory_is_refused_by_name(tmp_path: Path) -> None:
    store = create_store(f"sqlite:///{tmp_path}")
    with pytest.raises(StoreError, match="is a directory"):
        await store.open(create_schema=True)


async def test_a_corrupt_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "junk.db"
    path.write_bytes(b"this is not a database at all, just bytes" * 100)
    store = create_store(f"sqlite:///{path}")
    with pytest.raises(StoreError, match="not a readable SQLite database"):
        await store.open(create_schema=True)


async def test_missing_parent_directory(tmp_path: Path) -> None:
    store = create_store(f"sqlite:///{tmp_path}/no/such/dir/x.db")
    with pytest.raises(StoreError, match="cannot open SQLite database"):
        await store.open(create_schema=True)


async def test_newer_schema_is_refused_naming_both_versions(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/new.db"
    store = create_store(url)
    await store.open(create_schema=True)
    await store.close()
    with sqlite3.connect(tmp_path / "new.db") as raw:
        raw.execute("UPDATE schema_version SET version = 99")
    for create in (True, False):
        with pytest.raises(SchemaError, match=r"version 99 is newer .* schema version 1"):
            await create_store(url).open(create_schema=create)


async def test_no_schema_without_create_names_the_command(tmp_path: Path) -> None:
    path = tmp_path / "absent.db"
    store = create_store(f"sqlite:///{path}")
    assert await store.schema_version() is None
    with pytest.raises(SchemaError, match="cadence-fast schema setup"):
        await store.open()
    assert not path.exists(), "opening without create_schema must not create the file"
    assert await store.setup_schema() == 1
    assert await store.schema_version() == 1
    await store.open()
    await store.close()


async def test_concurrent_commits_share_transactions() -> None:
    store = create_store("sqlite://:memory:")
    assert isinstance(store, SQLiteStore)
    await store.open(create_schema=True)
    sid, rng = await owned_shard(store)
    domain = uid()
    before_tx, before_jobs = store.write_stats
    results = await asyncio.gather(
        *(store.commit(sid, rng, [create_op(domain, uid("wf-"))]) for _ in range(200))
    )
    assert all(r == [None] for r in results)
    tx, jobs = store.write_stats
    assert jobs - before_jobs == 200
    assert tx - before_tx < 100, f"200 concurrent commits took {tx - before_tx} transactions: not grouped"
    await store.close()


@pytest.mark.parametrize("where", ["memory", "file"])
async def test_fencing_within_one_group_transaction(where: str, tmp_path: Path) -> None:
    """Jobs of one batch run in submission order: a commit of the old owner before the
    takeover lands, one after it fails (the fencing read once per transaction must follow the
    takeover), and a job failing after its first writes reruns the batch without changing that."""
    url = "sqlite://:memory:" if where == "memory" else f"sqlite:///{tmp_path}/fence.db"
    store = create_store(url)
    assert isinstance(store, SQLiteStore)
    await store.open(create_schema=True)
    try:
        sid, range_a = await owned_shard(store)
        domain = uid()
        victim = create_op(domain, uid("wf-"))
        assert await store.commit(sid, range_a, [victim]) == [None]
        b = await store.get_or_create_shard(sid)
        b.range_id, b.owner = range_a + 1, "host-b"
        before, took_over, after, by_b = (create_op(domain, uid("wf-")) for _ in range(4))
        tx_before, _ = store.write_stats
        # Fails after it wrote: the run's history already has a batch starting at event 1.
        rewrite = update_op(victim, history=[batch(1, 2)])
        results = await asyncio.gather(
            store.commit(sid, range_a, [before]),
            store.update_shard(b, range_a),
            store.commit(sid, range_a, [after]),
            store.commit(sid, range_a + 1, [by_b, rewrite]),
            store.commit(sid, range_a + 1, [took_over]),
            return_exceptions=True,
        )
        assert store.write_stats[0] - tx_before == 1, "the test needs one group transaction"
        assert results[0] == [None] and results[1] is None and results[4] == [None]
        assert isinstance(results[2], ShardOwnershipLost)
        assert results[3][0] is None and isinstance(results[3][1], ConditionFailed)
        for op in (before, by_b, took_over):
            await store.get_execution(sid, domain, op.snapshot.workflow_id, op.snapshot.run_id)
        await absent(store, sid, domain, after.snapshot.workflow_id, after.snapshot.run_id)
        got = await store.get_execution(sid, domain, victim.snapshot.workflow_id, victim.snapshot.run_id)
        assert got.next_event_id == 3
    finally:
        await store.close()


async def test_close_finishes_queued_writes(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/close.db"
    store = create_store(url)
    await store.open(create_schema=True)
    sid, rng = await owned_shard(store)
    op = create_op(uid(), uid("wf-"))
    await store.commit(sid, rng, [op])
    updates = [
        asyncio.ensure_future(store.commit(sid, rng, [update_op(op, condition=3 + 2 * i)])) for i in range(20)
    ]
    await asyncio.sleep(0)  # every commit is queued now
    await store.close()
    assert [r.result() for r in updates] == [[None]] * 20
    again = create_store(url)
    await again.open()
    got = await again.get_execution(sid, op.snapshot.domain_id, op.snapshot.workflow_id, op.snapshot.run_id)
    assert got.next_event_id == 3 + 2 * 20
    await again.close()
    with pytest.raises(StoreError):
        await store.get_metadata_version()


_WRITER = textwrap.dedent(
    """
    import asyncio, sys
    from cadence_fast.persistence import create_store
    from cadence_fast.persistence.testing.factories import create_op, owned_shard, uid

    async def main():
        store = create_store(sys.argv[1])
        await store.open(create_schema=True)
        sid, rng = await owned_shard(store)
        print("shard", sid, flush=True)
        domain = uid()
        while True:
            ops = [create_op(domain, uid("wf-")) for _ in range(4)]
            results = await asyncio.gather(*(store.commit(sid, rng, [op]) for op in ops))
            assert all(r == [None] for r in results), results
            for op in ops:
                s = op.snapshot
                print("acked", s.domain_id, s.workflow_id, s.run_id, flush=True)

    asyncio.run(main())
    """
)


def _run_writer_until(url: str, count: int) -> tuple[int, list[tuple[str, str, str]]]:
    """Start _WRITER, read `count` acknowledged runs, then SIGKILL it mid-stream."""
    env = {**os.environ, "CADENCE_FAST_PURE": "1"}
    proc = subprocess.Popen([sys.executable, "-c", _WRITER, url], stdout=subprocess.PIPE, text=True, env=env)
    assert proc.stdout is not None
    acked: list[tuple[str, str, str]] = []
    shard_id = 0
    try:
        for line in proc.stdout:
            parts = line.split()
            if parts[0] == "shard":
                shard_id = int(parts[1])
            else:
                acked.append((parts[1], parts[2], parts[3]))
            if len(acked) >= count:
                break
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    return shard_id, acked


def test_acknowledged_commits_survive_sigkill(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/crash.db"
    shard_id, acked = _run_writer_until(url, 200)
    assert len(acked) == 200

    async def check() -> None:
        store = create_store(url)
        await store.open(create_schema=True)
        for domain, wf, run in acked:
            got = await store.get_execution(shard_id, domain, wf, run)
            assert got.run_id == run
        await store.close()

    asyncio.run(check())


async def test_a_write_lock_held_elsewhere_is_waited_for_without_blocking_the_loop(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/busy.db"
    store = create_store(url)
    await store.open(create_schema=True)
    sid, rng = await owned_shard(store)
    other = sqlite3.connect(tmp_path / "busy.db", isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")  # another process holds the write lock
    commit = asyncio.ensure_future(store.commit(sid, rng, [create_op(uid(), uid("wf-"))]))
    ticks = 0
    for _ in range(10):
        await asyncio.sleep(0.01)
        ticks += 1
    assert not commit.done(), "the commit must wait for the lock"
    assert ticks == 10
    other.execute("ROLLBACK")
    assert await commit == [None]
    other.close()
    await store.close()


async def test_a_write_lock_never_released_gives_unavailable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cadence_fast.persistence.errors import Unavailable
    from cadence_fast.persistence.sqlite import writer

    monkeypatch.setattr(writer, "BUSY_DEADLINE", 0.2)
    store = create_store(f"sqlite:///{tmp_path}/stuck.db")
    await store.open(create_schema=True)
    other = sqlite3.connect(tmp_path / "stuck.db", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    with pytest.raises(Unavailable):
        await store.get_or_create_shard(7)
    other.execute("ROLLBACK")
    assert (await store.get_or_create_shard(7)).shard_id == 7  # the store works again
    other.close()
    await store.close()


async def test_an_older_schema_is_migrated_only_when_asked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cadence_fast.persistence.sqlite import schema

    url = f"sqlite:///{tmp_path}/old.db"
    store = create_store(url)
    await store.open(create_schema=True)
    sid, rng = await owned_shard(store)
    await store.close()
    # This code now knows a version 2 that adds a table.
    monkeypatch.setattr(schema, "SCHEMA_VERSION", 2)
    monkeypatch.setitem(schema.MIGRATIONS, 2, ["CREATE TABLE v2_marker (id INTEGER PRIMARY KEY)"])
    with pytest.raises(
        SchemaError, match=r"version 1, this cadence-fast needs 2; run `cadence-fast schema update"
    ):
        await create_store(url).open()
    migrated = create_store(url)
    await migrated.open(create_schema=True)
    assert await migrated.schema_version() == 2
    assert (await migrated.get_or_create_shard(sid)).range_id == rng, "data survives the migration"
    await migrated.close()
    with sqlite3.connect(tmp_path / "old.db") as raw:
        assert raw.execute("SELECT count(*) FROM v2_marker").fetchone()[0] == 0


def test_one_store_used_from_successive_event_loops(tmp_path: Path) -> None:
    """A store may be opened in one asyncio.run and used in the next (CLI, test harnesses)."""
    store = create_store(f"sqlite:///{tmp_path}/loops.db")
    asyncio.run(store.open(create_schema=True))
    sid, rng = asyncio.run(owned_shard(store))
    op = create_op(uid(), uid("wf-"))
    assert asyncio.run(store.commit(sid, rng, [op])) == [None]
    got = asyncio.run(
        store.get_execution(sid, op.snapshot.domain_id, op.snapshot.workflow_id, op.snapshot.run_id)
    )
    assert got.run_id == op.snapshot.run_id
    asyncio.run(store.close())
