"""uber.cadence.api.v1.VisibilityAPI."""

from __future__ import annotations

from typing import TYPE_CHECKING

from cadence.api.v1 import service_visibility_pb2_grpc

from cadence_fast.api.base import ApiServicer

if TYPE_CHECKING:
    from cadence_fast.server import Services


class VisibilityAPI(ApiServicer, service_visibility_pb2_grpc.VisibilityAPIServicer):
    service_name = "uber.cadence.api.v1.VisibilityAPI"

    def __init__(self, services: Services) -> None:
        self.services = services
