"""The conformance kit's tests: DESIGN §6 and `Store`'s docstrings, executable.

Import every class into an adapter's test module and define a `store_url` fixture
(see `plugin.py`). Tests use unique ids (domains, workflow ids, shard ids, task
lists), so they also pass on a database shared by the whole run.
"""

from __future__ import annotations

from cadence_fast.persistence.testing.cases_executions import (
    TestCreateWorkflow,
    TestGroupCommit,
    TestUpdateWorkflow,
)
from cadence_fast.persistence.testing.cases_history_queues import TestHistory, TestQueues
from cadence_fast.persistence.testing.cases_metadata import TestDomains, TestSchema, TestShards
from cadence_fast.persistence.testing.cases_tasklists_visibility import (
    TestLimits,
    TestTaskLists,
    TestVisibility,
)

__all__ = [
    "TestSchema",
    "TestDomains",
    "TestShards",
    "TestCreateWorkflow",
    "TestUpdateWorkflow",
    "TestGroupCommit",
    "TestHistory",
    "TestQueues",
    "TestTaskLists",
    "TestVisibility",
    "TestLimits",
]
