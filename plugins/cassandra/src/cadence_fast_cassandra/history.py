"""Reading history under the transaction-id rule (pure: the store feeds it rows).

A history batch is appended to the run's ``history_node`` partition before the
conditional batch that commits it, keyed (node id = first event id, txn id); that
conditional batch writes a HISTORY_TXN row (node id -> txn id, last event id) into the
shard partition (see `cql.py`). So the HISTORY_TXN rows of a run are the committed
history, in order; ``history_node`` may also hold nodes of transactions that never
committed (a lost race, a fenced host, a crash between the append and the batch),
possibly at the same node id as a committed one. Only confirmed (node id, txn id)
pairs are returned.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from cadence_fast.persistence.errors import StoreError
from cadence_fast.persistence.records import HistoryBatch


@dataclass(frozen=True, slots=True)
class Confirmed:
    node_id: int  # first event id of the batch
    txn_id: int
    last_event_id: int


def pick_page(
    confirmations: Sequence[dict[str, Any]], min_event_id: int, page_size: int
) -> tuple[list[Confirmed], int | None]:
    """The confirmed batches of one page, and the node id to continue after (None: last page).

    `confirmations` are HISTORY_TXN rows (``task_id`` = node id, ``history_txn_id``,
    ``history_last_event_id``) in node order, read with LIMIT page_size + 1 (0: all)
    from the batch holding `min_event_id` on; a batch ending before `min_event_id`
    (the seek landed on it) is dropped.
    """
    more = page_size > 0 and len(confirmations) > page_size
    scanned = list(confirmations[:page_size]) if more else list(confirmations)
    page = [
        Confirmed(int(r["task_id"]), int(r["history_txn_id"]), int(r["history_last_event_id"]))
        for r in scanned
        if r["history_txn_id"] is not None
        and r["history_last_event_id"] is not None
        and int(r["history_last_event_id"]) >= min_event_id
    ]
    return page, (int(scanned[-1]["task_id"]) if more else None)


def assemble(page: Sequence[Confirmed], nodes: Sequence[dict[str, Any]], run_id: str) -> list[HistoryBatch]:
    """The page's batches from the ``history_node`` rows read over its node range.

    Nodes no HISTORY_TXN row confirms (orphans) are skipped; a confirmed node that is
    missing means the read saw less than the write's consistency level guaranteed.
    """
    data = {(int(n["node_id"]), int(n["txn_id"])): n["data"] or b"" for n in nodes}
    batches: list[HistoryBatch] = []
    for c in page:
        payload = data.get((c.node_id, c.txn_id))
        if payload is None:
            raise StoreError(
                f"history of run {run_id}: node {c.node_id} of committed transaction {c.txn_id} is missing "
                "(read below the consistency level it was written with?)"
            )
        batches.append(HistoryBatch(c.node_id, c.last_event_id, payload))
    return batches
