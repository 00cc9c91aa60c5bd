"""The official client's workflows on a server whose store is PostgreSQL or MariaDB.

Exactly what an operator does: `cadence-fast schema setup --store URL`, then
`cadence-fast server start --store URL`; a real `cadence.worker.Worker` runs the
workflows. Then the server restarts on the same database and a workflow that was open
across the restart completes. (The whole e2e suite runs on these stores too with
CADENCE_FAST_TEST_STORE=<url>.)
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator

from cadence.client import Client
from cadence.worker import Worker

from tests.e2e.workflows import Env, check_history, get_history, kinds, register_domain, registry, result


@contextlib.asynccontextmanager
async def worker_on(address: str, domain: str, task_list: str) -> AsyncIterator[Env]:
    """The official client and a real Worker polling `task_list`."""
    async with Client(domain=domain, target=address) as client, Worker(client, task_list, registry):
        yield Env(client, task_list)


async def test_workflows_run_and_survive_a_restart(server_store_url: str, server_factory: type) -> None:
    server = server_factory(server_store_url).start()
    domain = f"sql-{uuid.uuid4().hex[:8]}"
    await asyncio.to_thread(register_domain, server.address, domain)
    task_list = f"tl-{uuid.uuid4().hex[:8]}"

    async with worker_on(server.address, domain, task_list) as env:
        fan_out = await env.start("FanOutWorkflow", 6)
        # first = 1; then add_one(1 + i) for i in 0..5 -> sum(2..7)
        assert await result(env.client, fan_out, int) == sum(range(2, 8))
        events = await get_history(env.client, fan_out)
        check_history(events)
        assert kinds(events).count("activity_task_completed") == 7

        collector = await env.start("SignalCollectorWorkflow", 3)
        await env.client.signal_workflow(collector.workflow_id, "", "add", "before-restart")

    await asyncio.to_thread(server.restart)  # SIGTERM, then a new process on the same database

    async with worker_on(server.address, domain, task_list) as env:
        for item in ("after-restart-1", "after-restart-2"):
            await env.client.signal_workflow(collector.workflow_id, "", "add", item)
        assert await result(env.client, collector, list) == ["before-restart", "after-restart-1", "after-restart-2"]
        check_history(await get_history(env.client, collector))
