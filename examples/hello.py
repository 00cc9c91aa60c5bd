"""Register a domain, run a workflow with one activity, print its result.

    ./scripts/server &            # or: cadence-fast server start
    python examples/hello.py
"""

import asyncio
from datetime import timedelta

from cadence import Client, workflow
from cadence.api.v1.history_pb2 import EventFilterType
from cadence.api.v1.service_domain_pb2 import RegisterDomainRequest
from cadence.api.v1.service_workflow_pb2 import GetWorkflowExecutionHistoryRequest
from cadence.error import DomainAlreadyExistsError
from cadence.worker import Registry, Worker

registry = Registry()


@registry.activity()
async def greet(name: str) -> str:
    return f"Hello, {name}!"


@registry.workflow()
class HelloWorkflow:
    @workflow.run
    async def run(self, name: str) -> str:
        return await greet.with_options(schedule_to_close_timeout=timedelta(seconds=30)).execute(name)


async def main(target: str = "127.0.0.1:7833") -> str:
    async with Client(domain="samples", target=target) as client:
        try:
            await client.domain_stub.RegisterDomain(
                RegisterDomainRequest(name="samples", workflow_execution_retention_period=timedelta(days=1))
            )
        except DomainAlreadyExistsError:
            pass
        async with Worker(client, "hello-tl", registry):
            run = await client.start_workflow(
                "HelloWorkflow", "world", task_list="hello-tl", execution_start_to_close_timeout=timedelta(minutes=1)
            )
            # The client has no get-result call: wait for the close event.
            reply = await client.workflow_stub.GetWorkflowExecutionHistory(
                GetWorkflowExecutionHistoryRequest(
                    domain="samples",
                    workflow_execution=run,
                    wait_for_new_event=True,
                    history_event_filter_type=EventFilterType.EVENT_FILTER_TYPE_CLOSE_EVENT,
                    skip_archival=True,
                )
            )
            result = reply.history.events[-1].workflow_execution_completed_event_attributes.result.data.decode()
            print(result)
            return result


if __name__ == "__main__":
    import sys

    asyncio.run(main(*(sys.argv[1:2])))
