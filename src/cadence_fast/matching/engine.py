"""The matching engine: routes tasks and polls to task list managers (Go: matchingEngine).

Delivery contract (INTERFACES.md): `add_task` returns once the task was handed to a
waiting poller (in memory) or is durable in the task list's backlog; `on_done` fires
right after the backlog write, or when the poll path acks a sync-matched task. A task
whose poll was cancelled or re-queued goes back to the list, still holding `on_done`.
"""

from __future__ import annotations

import asyncio
import logging

from cadence_fast import errors
from cadence_fast.loops import LoopRef
from cadence_fast.matching.backlog import TaskListLost
from cadence_fast.matching.task import KIND_NORMAL, KIND_STICKY, MatchTask
from cadence_fast.matching.task_list import (
    LOST,
    PollerInfo,
    TaskListDescription,
    TaskListManager,
)
from cadence_fast.persistence.errors import StoreError
from cadence_fast.persistence.store import Store

__all__ = [
    "KIND_NORMAL",
    "KIND_STICKY",
    "MatchTask",
    "MatchingEngine",
    "PollerInfo",
    "TaskListDescription",
]

log = logging.getLogger("cadence_fast.matching")

TaskListKey = tuple[str, str, int]  # (domain_id, name, task_type)

#: How many times add_task reloads a list whose lease moved before giving up.
MAX_RELOADS = 3
#: How long add_task waits for a poller before writing the task to the backlog (Go: ~50 ms).
SYNC_MATCH_WAIT_SECONDS = 0.05
#: Default wait of a query task given to add_task (callers should use offer_query).
QUERY_OFFER_SECONDS = 10.0


def _retrieve(fut: asyncio.Future[TaskListManager]) -> None:
    """Mark a load's failure as seen: every waiter may have gone away already."""
    if not fut.cancelled():
        fut.exception()


class MatchingEngine:
    def __init__(
        self,
        store: Store,
        *,
        ack_flush_interval: float = 1.0,
        idle_unload_seconds: float = 300.0,
        sync_match_wait: float = SYNC_MATCH_WAIT_SECONDS,
    ) -> None:
        self.store = store
        self.sync_match_wait = sync_match_wait
        self._loop_ref = LoopRef()  # cadence_fast.loops: the loop without a getpid() per lookup
        self.ack_flush_interval = ack_flush_interval
        self.idle_unload_seconds = idle_unload_seconds
        self._lists: dict[TaskListKey, TaskListManager] = {}
        self._loading: dict[TaskListKey, asyncio.Future[TaskListManager]] = {}
        self._maintenance: asyncio.Task[None] | None = None
        self._stopped = False

    # --- lifecycle ----------------------------------------------------------------------

    async def start(self) -> None:
        self._stopped = False
        if self._maintenance is None:
            self._maintenance = asyncio.create_task(self._maintain())

    async def stop(self) -> None:
        """Every waiting poll returns None now; ack levels are flushed. Idempotent."""
        self._stopped = True
        managers = list(self._lists.values())
        self._lists.clear()
        # Wake every poller first, synchronously, before any await.
        for mgr in managers:
            mgr.dispatcher.close()
        if self._maintenance is not None:
            self._maintenance.cancel()
            await asyncio.gather(self._maintenance, return_exceptions=True)
            self._maintenance = None
        await asyncio.gather(*(mgr.close() for mgr in managers), return_exceptions=True)

    async def _maintain(self) -> None:
        """Persist ack levels (deleting acked rows) and unload idle lists, periodically."""
        while True:
            await asyncio.sleep(self.ack_flush_interval)
            for key, mgr in list(self._lists.items()):
                try:
                    await mgr.backlog.flush()
                    if mgr.is_idle(self.idle_unload_seconds):
                        await self._unload(key, mgr)
                except TaskListLost:
                    await self._unload(key, mgr, flush=False)
                except StoreError as e:
                    log.warning("task list %s: ack flush failed: %s", mgr.name, e)
                except Exception:  # noqa: BLE001 - one list's bug must not stop every flush
                    log.exception("task list %s: maintenance failed", mgr.name)

    async def _unload(self, key: TaskListKey, mgr: TaskListManager, flush: bool = True) -> None:
        if self._lists.get(key) is mgr:
            del self._lists[key]
        await mgr.close(flush=flush)

    # --- task list managers -----------------------------------------------------------------

    async def _get(self, domain_id: str, name: str, task_type: int, kind: int) -> TaskListManager:
        if self._stopped:
            raise errors.UnavailableError("matching is shutting down")
        key = (domain_id, name, task_type)
        mgr = self._lists.get(key)
        if mgr is not None and not mgr.closed:
            return mgr
        loading = self._loading.get(key)
        if loading is None:
            # Its own task: a caller that gives up (cancelled poll) must not abort a load
            # that others wait for, nor leave a leased list half set up.
            loading = asyncio.ensure_future(self._load(key, kind))
            loading.add_done_callback(_retrieve)
            self._loading[key] = loading
        return await asyncio.shield(loading)

    async def _load(self, key: TaskListKey, kind: int) -> TaskListManager:
        try:
            mgr = TaskListManager(
                self.store, key[0], key[1], key[2], kind, self._resubmit, sync_match_wait=self.sync_match_wait
            )
            await mgr.start()
            if self._stopped:
                await mgr.close(flush=False)
                raise errors.UnavailableError("matching is shutting down")
            self._lists[key] = mgr
            return mgr
        finally:
            del self._loading[key]

    async def _lost(self, mgr: TaskListManager) -> None:
        log.info("task list %s (type %d): lease lost, reloading", mgr.name, mgr.task_type)
        await self._unload((mgr.domain_id, mgr.name, mgr.task_type), mgr, flush=False)

    # --- adding tasks -------------------------------------------------------------------------

    async def add_task(self, task: MatchTask) -> None:
        """Sync match or persist; see the module doc. Query tasks: see offer_query."""
        if task.query is not None:
            await self.offer_query(task, QUERY_OFFER_SECONDS)
            return
        for _attempt in range(MAX_RELOADS):
            mgr = self._lists.get((task.domain_id, task.task_list, task.task_type))  # the hot path: loaded
            if mgr is None or mgr.closed or self._stopped:
                mgr = await self._get(task.domain_id, task.task_list, task.task_type, task.kind)
            try:
                await mgr.add_task(task)
                return
            except TaskListLost:
                await self._lost(mgr)
        raise errors.UnavailableError(f"task list {task.task_list!r}: lease keeps moving; retry later")

    async def _resubmit(self, task: MatchTask) -> None:
        # A sync-matched task came back and no poller waits: the persist path, sticky
        # check skipped (the task was already accepted for that list).
        for _attempt in range(MAX_RELOADS):
            mgr = await self._get(task.domain_id, task.task_list, task.task_type, task.kind)
            try:
                if mgr.dispatcher.offer(task):
                    task.owner = mgr
                    return
                task.owner = mgr
                await mgr.backlog.persist(task)
                return
            except TaskListLost:
                await self._lost(mgr)
        raise errors.UnavailableError(f"task list {task.task_list!r}: lease keeps moving")

    async def offer_query(self, task: MatchTask, timeout: float) -> bool:  # noqa: ASYNC109
        """Give a query task to a poller within `timeout` s; False if none took it. Never persisted."""
        if task.query is None:
            raise ValueError("offer_query needs a task with `query` set")
        if self._stopped:
            return False
        mgr = await self._get(task.domain_id, task.task_list, task.task_type, task.kind)
        return await mgr.offer_query(task, timeout)

    # --- polling ------------------------------------------------------------------------------

    async def poll(
        self,
        domain_id: str,
        task_list: str,
        task_type: int,
        identity: str,
        timeout: float,  # noqa: ASYNC109 - the interface names it so
        *,
        kind: int = KIND_NORMAL,
        rate_per_second: float = 0.0,
    ) -> MatchTask | None:
        """Long poll: a task, or None shortly before `timeout` seconds elapse (never raises for it)."""
        if self._stopped:
            return None
        loop = self._loop_ref.get()
        # Answer a little early so the reply beats the caller's own deadline.
        deadline = loop.time() + timeout - min(0.05, max(0.0, timeout) * 0.05)
        while True:
            mgr = self._lists.get((domain_id, task_list, task_type))  # the hot path: loaded
            if mgr is None or mgr.closed:
                try:
                    mgr = await self._get(domain_id, task_list, task_type, kind)
                except errors.UnavailableError:
                    return None
            got = await mgr.poll(identity, deadline, rate_per_second)
            if got is LOST:
                await self._lost(mgr)
                if self._stopped or loop.time() >= deadline:
                    return None
                continue
            return got  # type: ignore[return-value]

    def ack(self, task: MatchTask) -> None:
        """The poll path is done with the task (recorded as started, or found stale)."""
        owner = task.owner
        if isinstance(owner, TaskListManager):
            owner.ack(task)
        elif task.on_done is not None and task.query is None:
            done, task.on_done = task.on_done, None
            done()

    def requeue(self, task: MatchTask) -> None:
        """The poll path failed transiently: deliver the task again."""
        owner = task.owner
        if not isinstance(owner, TaskListManager):
            raise ValueError("requeue of a task matching did not hand out")
        owner.requeue(task)

    # --- introspection ------------------------------------------------------------------------

    async def describe(
        self, domain_id: str, task_list: str, task_type: int, kind: int = KIND_NORMAL
    ) -> TaskListDescription:
        """Pollers, backlog size and levels of one task list (loads it, as Go does)."""
        mgr = await self._get(domain_id, task_list, task_type, kind)
        return await mgr.describe()

    async def list_task_lists(self, domain_id: str) -> list[TaskListDescription]:
        """Every normal task list of a domain, stored or loaded; pollers from loaded ones."""
        found: dict[TaskListKey, TaskListDescription] = {}
        for rec in await self.store.list_task_lists(domain_id):
            if rec.kind == KIND_STICKY:
                continue
            found[(rec.domain_id, rec.name, rec.task_type)] = TaskListDescription(
                domain_id=rec.domain_id,
                name=rec.name,
                task_type=rec.task_type,
                kind=rec.kind or KIND_NORMAL,
                pollers=[],
                backlog_count=0,
                ack_level=rec.ack_level,
                read_level=rec.ack_level,
                range_id=rec.range_id,
                task_id_block=((rec.range_id - 1) * 100_000 + 1, rec.range_id * 100_000),
            )
        for key, mgr in self._lists.items():
            if key[0] != domain_id or mgr.kind == KIND_STICKY or mgr.closed:
                continue
            b = mgr.backlog
            found[key] = TaskListDescription(
                domain_id=domain_id,
                name=mgr.name,
                task_type=mgr.task_type,
                kind=mgr.kind,
                pollers=mgr.pollers(),
                backlog_count=0,
                ack_level=b.ack_level,
                read_level=b.read_level,
                range_id=b.range_id,
                task_id_block=b.task_id_block,
            )
        return sorted(found.values(), key=lambda d: (d.task_type, d.name))

    def backlog_hint(self, domain_id: str, task_list: str, task_type: int) -> int:
        """Approximate backlog of a loaded list (PollFor*TaskResponse.backlog_count_hint); 0 if not loaded."""
        mgr = self._lists.get((domain_id, task_list, task_type))
        return 0 if mgr is None else mgr.backlog_hint()

    def loaded(self, domain_id: str, task_list: str, task_type: int) -> TaskListManager | None:
        """The loaded manager of a list, if any (tests and introspection)."""
        return self._lists.get((domain_id, task_list, task_type))
