"""uber.cadence.api.v1.WorkflowAPI."""

from __future__ import annotations

from typing import TYPE_CHECKING

from cadence.api.v1 import service_workflow_pb2_grpc

from cadence_fast.api.base import ApiServicer
from cadence_fast.api.tasklist import TaskListHandlers

if TYPE_CHECKING:
    from cadence_fast.server import Services


class WorkflowAPI(ApiServicer, TaskListHandlers, service_workflow_pb2_grpc.WorkflowAPIServicer):
    service_name = "uber.cadence.api.v1.WorkflowAPI"

    def __init__(self, services: Services) -> None:
        self.services = services
