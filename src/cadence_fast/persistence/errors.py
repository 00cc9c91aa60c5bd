"""Typed storage errors. Every adapter raises exactly these (DESIGN §6)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cadence_fast.persistence.records import CurrentExecutionRecord


class StoreError(Exception):
    """Base of every storage error."""


class ShardOwnershipLost(StoreError):
    """The shard's range_id moved: another host owns it now. Nothing of the call was written."""

    def __init__(self, shard_id: int, message: str = "") -> None:
        super().__init__(message or f"shard {shard_id}: ownership lost (range_id changed)")
        self.shard_id = shard_id


class ConditionFailed(StoreError):
    """A write's condition (next_event_id, task list range_id, current run, ...) did not hold."""


class AlreadyExists(StoreError):
    """A create hit an existing row. For workflow creates, `current` is the run in the way."""

    def __init__(self, message: str, current: CurrentExecutionRecord | None = None) -> None:
        super().__init__(message)
        self.current = current


class NotFound(StoreError):
    """The row asked for does not exist."""


class Unavailable(StoreError):
    """The database cannot be reached or timed out; the caller may retry."""


class SchemaError(StoreError):
    """The database holds no schema, an outdated one, or one newer than this code knows."""
