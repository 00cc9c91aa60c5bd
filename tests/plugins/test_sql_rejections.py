"""Values a server database refuses are typed errors of their own op, never driver exceptions.

MySQL keys are VARCHAR(255) (as in Cadence's MySQL schema) and PostgreSQL text cannot
hold NUL: such an op of a group commit fails alone with a StoreError at its index, and
the other ops of the group commit.
"""

from __future__ import annotations

import asyncio

import pytest

from cadence_fast.errors import BadRequestError
from cadence_fast.persistence import create_store
from cadence_fast.persistence.errors import NotFound, StoreError
from cadence_fast.persistence.testing.factories import create_op, owned_shard, uid
from cadence_fast.persistence.visibility_query import VisibilityQuery

BAD_ID = {"postgres": "nul\x00inside", "mysql": "x" * 300}


def test_refused_value_fails_only_its_op(server_db: tuple[str, str]) -> None:
    kind, url = server_db

    async def scenario() -> None:
        store = create_store(url)
        await store.open(create_schema=True)
        try:
            shard_id, range_id = await owned_shard(store)
            domain = uid("d-")
            good1, good2 = uid("wf-"), uid("wf-")
            ops = [create_op(domain, good1), create_op(domain, BAD_ID[kind]), create_op(domain, good2)]
            results = await store.commit(shard_id, range_id, ops)
            assert results[0] is None and results[2] is None, results
            assert isinstance(results[1], StoreError), results
            for wf in (good1, good2):
                assert (await store.get_current_execution(shard_id, domain, wf)).run_id
            # Alone, too: the call returns the op's error, it does not raise.
            [alone] = await store.commit(shard_id, range_id, [create_op(domain, BAD_ID[kind])])
            assert isinstance(alone, StoreError)
            # And the store's other calls say it in a typed error as well.
            if kind == "mysql":
                with pytest.raises(NotFound):
                    await store.get_current_execution(shard_id, domain, BAD_ID[kind])
            else:
                with pytest.raises(StoreError):
                    await store.get_current_execution(shard_id, domain, BAD_ID[kind])
        finally:
            await store.close()

    asyncio.run(scenario())


def test_malformed_page_tokens_are_bad_requests(server_db: tuple[str, str]) -> None:
    _, url = server_db

    async def scenario() -> None:
        store = create_store(url)
        await store.open(create_schema=True)
        try:
            with pytest.raises(BadRequestError):
                await store.read_history(1, "d", "wf", "run", 1, 10, 5, b"not-a-token")
            with pytest.raises(BadRequestError):
                await store.list_domains(5, b"\xff\xfe")
            with pytest.raises(BadRequestError):
                await store.list_workflows("d", VisibilityQuery(), 5, b"garbage")
        finally:
            await store.close()

    asyncio.run(scenario())
