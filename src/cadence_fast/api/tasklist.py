"""Task-list introspection RPCs of WorkflowAPI (DescribeTaskList, GetTaskListsByDomain,
ListTaskListPartitions), mixed into `api.workflow.WorkflowAPI`."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cadence_fast.server import Services


class TaskListHandlers:
    services: Services
