"""The service errors every layer raises, named after Cadence's own error types.

Handlers and the engine raise these; `cadence_fast.api.errors` is the one place that
turns them into a gRPC status plus the typed `error.proto` detail the official clients
decode (client-contract §3). Nothing else builds a status.
"""

from __future__ import annotations


class ServiceError(Exception):
    """Base class: `message` becomes the gRPC details string."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BadRequestError(ServiceError):
    """INVALID_ARGUMENT with no detail. The message must name the offending field."""


class EntityNotExistsError(ServiceError):
    """NOT_FOUND: unknown domain, workflow, run or task token."""


class WorkflowExecutionAlreadyCompletedError(ServiceError):
    """NOT_FOUND: signal, cancel or terminate of a closed run."""


class WorkflowExecutionAlreadyStartedError(ServiceError):
    """ALREADY_EXISTS: duplicate start or a rejecting workflow-id reuse policy."""

    def __init__(self, message: str, start_request_id: str, run_id: str) -> None:
        super().__init__(message)
        self.start_request_id = start_request_id
        self.run_id = run_id


class DomainAlreadyExistsError(ServiceError):
    """ALREADY_EXISTS: a domain of that name is registered."""


class CancellationAlreadyRequestedError(ServiceError):
    """ALREADY_EXISTS: a second RequestCancelWorkflowExecution."""


class QueryFailedError(ServiceError):
    """INVALID_ARGUMENT with a QueryFailedError detail; message = the worker's error."""


class DomainNotActiveError(ServiceError):
    """FAILED_PRECONDITION: the domain is not active in this cluster."""

    def __init__(self, message: str, domain: str, current_cluster: str, active_cluster: str) -> None:
        super().__init__(message)
        self.domain = domain
        self.current_cluster = current_cluster
        self.active_cluster = active_cluster


class FeatureNotEnabledError(ServiceError):
    """FAILED_PRECONDITION: a feature this server has switched off."""

    def __init__(self, message: str, feature_flag: str) -> None:
        super().__init__(message)
        self.feature_flag = feature_flag


class ClientVersionNotSupportedError(ServiceError):
    """FAILED_PRECONDITION: the client's feature version is outside the supported range."""

    def __init__(self, message: str, feature_version: str, client_impl: str, supported_versions: str) -> None:
        super().__init__(message)
        self.feature_version = feature_version
        self.client_impl = client_impl
        self.supported_versions = supported_versions


class ServiceBusyError(ServiceError):
    """RESOURCE_EXHAUSTED: overload; clients retry."""

    def __init__(self, message: str, reason: str = "") -> None:
        super().__init__(message)
        self.reason = reason


class LimitExceededError(ServiceError):
    """RESOURCE_EXHAUSTED: a per-run limit (signals, history size) is reached."""


class StickyWorkerUnavailableError(ServiceError):
    """UNAVAILABLE: the sticky task list has no live poller."""


class InternalServiceError(ServiceError):
    """INTERNAL with no detail; clients retry."""


class UnavailableError(ServiceError):
    """UNAVAILABLE with no detail: the store or a shard is temporarily not reachable; clients retry."""


class AbortedError(ServiceError):
    """ABORTED: shard ownership moved while the call ran; clients retry."""


class UnimplementedError(ServiceError):
    """UNIMPLEMENTED: the method exists in the IDL but this server does not serve it yet."""


class PermissionDeniedError(ServiceError):
    """PERMISSION_DENIED."""
