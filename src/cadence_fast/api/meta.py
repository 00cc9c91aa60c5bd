"""uber.cadence.api.v1.MetaAPI: health."""

from __future__ import annotations

from typing import TYPE_CHECKING

import grpc
from cadence.api.v1 import service_meta_pb2, service_meta_pb2_grpc

from cadence_fast.api.base import ApiServicer

if TYPE_CHECKING:
    from cadence_fast.server import Services


class MetaAPI(ApiServicer, service_meta_pb2_grpc.MetaAPIServicer):
    service_name = "uber.cadence.api.v1.MetaAPI"

    def __init__(self, services: Services) -> None:
        self.services = services

    async def Health(
        self, request: service_meta_pb2.HealthRequest, context: grpc.aio.ServicerContext
    ) -> service_meta_pb2.HealthResponse:
        return service_meta_pb2.HealthResponse(ok=True, message="OK")
