"""Assertion helpers shared by the conformance cases."""

from __future__ import annotations

import pytest

from cadence_fast.persistence.errors import NotFound
from cadence_fast.persistence.store import Store
from cadence_fast.persistence.visibility_query import SYSTEM_ATTRIBUTES, Attr

MB = 1024 * 1024


def needs_shared_database(store_url: str) -> None:
    if ":memory:" in store_url:
        pytest.skip("an in-memory store is private to its instance: no second instance sees it")


def system_attr(name: str) -> Attr:
    return Attr(name, SYSTEM_ATTRIBUTES[name][0])


async def history_of(
    store: Store, shard_id: int, domain_id: str, workflow_id: str, run_id: str
) -> list[tuple[int, int]]:
    """Every committed batch of a run as (first, last) event ids, read in one call."""
    batches, token = await store.read_history(shard_id, domain_id, workflow_id, run_id, 1, 1 << 62, 0, None)
    assert token is None
    return [(b.first_event_id, b.last_event_id) for b in batches]


async def absent(store: Store, shard_id: int, domain_id: str, workflow_id: str, run_id: str) -> None:
    """Nothing of the run is visible: no row, no history."""
    with pytest.raises(NotFound):
        await store.get_execution(shard_id, domain_id, workflow_id, run_id)
    assert await history_of(store, shard_id, domain_id, workflow_id, run_id) == []
