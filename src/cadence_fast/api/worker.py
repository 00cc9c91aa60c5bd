"""uber.cadence.api.v1.WorkerAPI."""

from __future__ import annotations

from typing import TYPE_CHECKING

from cadence.api.v1 import service_worker_pb2_grpc

from cadence_fast.api.base import ApiServicer

if TYPE_CHECKING:
    from cadence_fast.server import Services


class WorkerAPI(ApiServicer, service_worker_pb2_grpc.WorkerAPIServicer):
    service_name = "uber.cadence.api.v1.WorkerAPI"

    def __init__(self, services: Services) -> None:
        self.services = services
