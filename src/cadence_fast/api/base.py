"""What every servicer shares: error mapping, and UNIMPLEMENTED for the RPCs it does not serve.

A servicer subclasses `ApiServicer` and the generated `*APIServicer` base. Every RPC of
the generated base that the subclass defines is wrapped so that any exception becomes
the status of `api.errors`; every RPC it does not define answers UNIMPLEMENTED with a
message naming the method. Handlers never build statuses themselves.

An RPC listed in a servicer's `encoded_responses` may return any object with
`SerializeToString()` (e.g. a poll reply that splices stored history bytes, see
history.views.DecisionTaskResponse): `add_encoded_handlers` registers it again with a
serializer that calls that method instead of the generated message class's.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
from collections.abc import Awaitable, Callable
from typing import Any, ClassVar

import grpc

from cadence_fast import errors
from cadence_fast.api.errors import to_status

Handler = Callable[[Any, Any, grpc.aio.ServicerContext], Awaitable[Any]]


def _rpc_names(cls: type) -> list[str]:
    """RPC method names of the generated servicer base(s) in cls's MRO."""
    names: list[str] = []
    for klass in cls.__mro__:
        if klass.__name__.endswith("APIServicer") and klass.__module__.startswith("cadence.api."):
            names.extend(n for n, v in vars(klass).items() if inspect.isfunction(v) and not n.startswith("_"))
    return names


def _guard(fn: Handler) -> Handler:
    @functools.wraps(fn)
    async def handler(self: Any, request: Any, context: grpc.aio.ServicerContext) -> Any:
        try:
            return await fn(self, request, context)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - every failure becomes a typed status
            await context.abort_with_status(to_status(exc))

    return handler


def _unimplemented(service: str, name: str) -> Handler:
    async def handler(self: Any, request: Any, context: grpc.aio.ServicerContext) -> Any:
        await context.abort_with_status(
            to_status(errors.UnimplementedError(f"{service}.{name} is not implemented by this server"))
        )

    handler.__name__ = name
    return handler


def _serialize(response: Any) -> bytes:
    return response.SerializeToString()  # type: ignore[no-any-return]


def add_encoded_handlers(servicer: ApiServicer, server: Any) -> None:
    """Register the servicer's `encoded_responses` RPCs with a self-encoding serializer.

    Call it after the generated `add_*Servicer_to_server`: a registered method handler
    added later replaces the generated one for the same method."""
    if not servicer.encoded_responses:
        return
    handlers = {
        name: grpc.unary_unary_rpc_method_handler(
            getattr(servicer, name), request_deserializer=request_type.FromString, response_serializer=_serialize
        )
        for name, request_type in servicer.encoded_responses.items()
    }
    server.add_registered_method_handlers(servicer.service_name, handlers)


class ApiServicer:
    #: Service name for messages, e.g. "uber.cadence.api.v1.DomainAPI".
    service_name: str = ""
    #: RPC name -> its request message class, for RPCs whose handler may return a
    #: self-encoding reply instead of the generated response message.
    encoded_responses: ClassVar[dict[str, Any]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for name in _rpc_names(cls):
            own = None
            for klass in cls.__mro__:
                if klass.__module__.startswith("cadence.api."):
                    break
                if name in vars(klass):
                    own = vars(klass)[name]
                    break
            if own is None:
                setattr(cls, name, _unimplemented(cls.service_name, name))
            elif not getattr(own, "__cadence_guarded__", False):
                guarded = _guard(own)
                guarded.__cadence_guarded__ = True  # type: ignore[attr-defined]
                setattr(cls, name, guarded)
