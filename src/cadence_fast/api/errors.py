"""The error model: typed service errors in, exact gRPC status and typed detail out.

Client-contract §3: the status in `grpc-status-details-bin` must carry the same code
and message as the call, and `details[0]` is the typed `uber.cadence.api.v1` error.
This module is the only place that builds statuses; every servicer reaches it through
`api.base`, which aborts a failed call with `to_status(exc)`.
"""

from __future__ import annotations

import logging

import grpc
from cadence.api.v1 import error_pb2
from google.protobuf import any_pb2
from google.protobuf.message import Message
from google.rpc import status_pb2
from grpc_status import rpc_status

from cadence_fast import errors
from cadence_fast.persistence import errors as store_errors

log = logging.getLogger(__name__)


def _status(code: grpc.StatusCode, message: str, detail: Message | None) -> grpc.Status:
    status = status_pb2.Status(code=code.value[0], message=message)
    if detail is not None:
        packed = any_pb2.Any()
        packed.Pack(detail, type_url_prefix="type.googleapis.com/")
        status.details.append(packed)
    return rpc_status.to_status(status)


def to_status(exc: BaseException) -> grpc.Status:
    """Map any exception raised while serving a call to the status Cadence would send."""
    E = errors
    msg = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    if isinstance(exc, E.BadRequestError):
        return _status(grpc.StatusCode.INVALID_ARGUMENT, msg, None)
    if isinstance(exc, E.EntityNotExistsError):
        # current/active cluster deliberately left empty: the Python client retries a
        # NOT_FOUND history read whenever the two differ (client-contract §1).
        return _status(grpc.StatusCode.NOT_FOUND, msg, error_pb2.EntityNotExistsError())
    if isinstance(exc, E.WorkflowExecutionAlreadyCompletedError):
        return _status(grpc.StatusCode.NOT_FOUND, msg, error_pb2.WorkflowExecutionAlreadyCompletedError())
    if isinstance(exc, E.WorkflowExecutionAlreadyStartedError):
        return _status(
            grpc.StatusCode.ALREADY_EXISTS,
            msg,
            error_pb2.WorkflowExecutionAlreadyStartedError(start_request_id=exc.start_request_id, run_id=exc.run_id),
        )
    if isinstance(exc, E.DomainAlreadyExistsError):
        return _status(grpc.StatusCode.ALREADY_EXISTS, msg, error_pb2.DomainAlreadyExistsError())
    if isinstance(exc, E.CancellationAlreadyRequestedError):
        return _status(grpc.StatusCode.ALREADY_EXISTS, msg, error_pb2.CancellationAlreadyRequestedError())
    if isinstance(exc, E.QueryFailedError):
        return _status(grpc.StatusCode.INVALID_ARGUMENT, msg, error_pb2.QueryFailedError())
    if isinstance(exc, E.DomainNotActiveError):
        return _status(
            grpc.StatusCode.FAILED_PRECONDITION,
            msg,
            error_pb2.DomainNotActiveError(
                domain=exc.domain, current_cluster=exc.current_cluster, active_cluster=exc.active_cluster
            ),
        )
    if isinstance(exc, E.FeatureNotEnabledError):
        return _status(
            grpc.StatusCode.FAILED_PRECONDITION, msg, error_pb2.FeatureNotEnabledError(feature_flag=exc.feature_flag)
        )
    if isinstance(exc, E.ClientVersionNotSupportedError):
        return _status(
            grpc.StatusCode.FAILED_PRECONDITION,
            msg,
            error_pb2.ClientVersionNotSupportedError(
                feature_version=exc.feature_version,
                client_impl=exc.client_impl,
                supported_versions=exc.supported_versions,
            ),
        )
    if isinstance(exc, E.ServiceBusyError):
        return _status(grpc.StatusCode.RESOURCE_EXHAUSTED, msg, error_pb2.ServiceBusyError(reason=exc.reason))
    if isinstance(exc, E.LimitExceededError):
        return _status(grpc.StatusCode.RESOURCE_EXHAUSTED, msg, error_pb2.LimitExceededError())
    if isinstance(exc, E.StickyWorkerUnavailableError):
        return _status(grpc.StatusCode.UNAVAILABLE, msg, error_pb2.StickyWorkerUnavailableError())
    if isinstance(exc, E.UnavailableError | store_errors.Unavailable):
        return _status(grpc.StatusCode.UNAVAILABLE, msg, None)
    if isinstance(exc, E.AbortedError | store_errors.ShardOwnershipLost):
        return _status(grpc.StatusCode.ABORTED, msg, None)
    if isinstance(exc, E.UnimplementedError):
        return _status(grpc.StatusCode.UNIMPLEMENTED, msg, None)
    if isinstance(exc, E.PermissionDeniedError):
        return _status(grpc.StatusCode.PERMISSION_DENIED, msg, None)
    if isinstance(exc, E.InternalServiceError):
        return _status(grpc.StatusCode.INTERNAL, msg, None)
    # Anything unexpected is a server bug: log it, answer INTERNAL (retried by clients)
    # rather than UNKNOWN (which clients do not retry) so a transient fault heals itself.
    log.error("unexpected error serving a call", exc_info=exc)
    return _status(grpc.StatusCode.INTERNAL, f"internal error: {type(exc).__name__}: {exc}", None)

