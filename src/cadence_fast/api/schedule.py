"""uber.cadence.api.v1.ScheduleAPI: registered without handlers, so that every schedule call
answers UNIMPLEMENTED naming its method (api.base) rather than an anonymous unknown-service error."""

from __future__ import annotations

from typing import TYPE_CHECKING

from cadence.api.v1 import service_schedule_pb2_grpc

from cadence_fast.api.base import ApiServicer

if TYPE_CHECKING:
    from cadence_fast.server import Services


class ScheduleAPI(ApiServicer, service_schedule_pb2_grpc.ScheduleAPIServicer):
    service_name = "uber.cadence.api.v1.ScheduleAPI"

    def __init__(self, services: Services) -> None:
        self.services = services
