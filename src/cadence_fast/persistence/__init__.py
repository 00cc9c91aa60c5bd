"""The storage contract: records, typed errors, hook specs and the adapter registry."""

from cadence_fast.persistence.registry import create_store
from cadence_fast.persistence.store import Store

__all__ = ["Store", "create_store"]
