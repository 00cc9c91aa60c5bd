"""Connections that die while idle (a database restart, a proxy timeout, an operator's KILL)
are replaced without failing the next calls: nothing could have committed on them.

The test kills the adapter's own server-side sessions (pg_terminate_backend / KILL),
which leaves the database server itself, and everyone else's sessions, alone.
"""

from __future__ import annotations

import asyncio

import psycopg

from cadence_fast.persistence import create_store
from cadence_fast.persistence.records import DomainRecord
from cadence_fast.persistence.testing.factories import create_op, owned_shard, uid
from tests.plugins.databases import mysql_connect


def _kill_sessions(kind: str, url: str) -> int:
    database = url.rsplit("/", 1)[1].split("?")[0]
    if kind == "postgres":
        admin = url.rsplit("/", 1)[0] + "/postgres"
        with psycopg.connect(admin, autocommit=True) as conn:
            rows = conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                (database,),
            ).fetchall()
        return len(rows)
    conn = mysql_connect()
    with conn, conn.cursor() as cur:
        cur.execute("SELECT id FROM information_schema.processlist WHERE db = %s AND id <> CONNECTION_ID()", (database,))
        ids = [r[0] for r in cur.fetchall()]
        for i in ids:
            cur.execute(f"KILL {int(i)}")
    return len(ids)


def test_dead_idle_connections_are_replaced(server_db: tuple[str, str]) -> None:
    kind, base = server_db
    url = f"{base}?pool_size=2"

    async def scenario() -> None:
        store = create_store(url)
        await store.open(create_schema=True)
        try:
            shard_id, range_id = await owned_shard(store)
            domain = uid("d-")
            name = uid("loss-")
            # Warm every connection of the pool.
            await asyncio.gather(*(store.get_metadata_version() for _ in range(8)))
            for round_ in range(2):
                assert await asyncio.to_thread(_kill_sessions, kind, base) >= 1
                await asyncio.sleep(0.2)
                # A read, a plain write and a workflow commit: none of them sees the loss.
                await store.get_metadata_version()
                await store.create_domain(DomainRecord(uid(), f"{name}-{round_}", 0, b"x"))
                wf = uid("wf-")
                assert await store.commit(shard_id, range_id, [create_op(domain, wf)]) == [None]
                assert (await store.get_current_execution(shard_id, domain, wf)).run_id
        finally:
            await store.close()

    asyncio.run(scenario())
