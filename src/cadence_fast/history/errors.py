"""Errors internal to the history engine (the service errors live in cadence_fast.errors)."""

from __future__ import annotations


class StaleTaskError(Exception):
    """A matched decision/activity task no longer matches mutable state: matching drops it."""


class DecisionFailed(Exception):
    """Raised while applying a decision: the decision task fails with `cause` instead."""

    def __init__(self, cause: int, message: str) -> None:
        super().__init__(message)
        self.cause = cause
        self.message = message
