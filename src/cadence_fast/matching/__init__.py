"""Matching: task lists, long polls, sync match, the persisted backlog (DESIGN §5).

- `engine.MatchingEngine`: the interface history and the frontend use (INTERFACES.md):
  add_task / poll / ack / requeue / offer_query, plus describe / list_task_lists.
- `task_list.TaskListManager`: one loaded task list (domain, name, type): its dispatcher,
  its backlog, its pollers. Loaded on first use, unloaded when idle or when its lease moved.
- `backlog.Backlog`: the list's lease (range_id), task-id blocks, group-committed writes,
  read level and ack level (acked rows are deleted in batches below the ack level).
- `task.MatchTask`: the unit moved; its backlog encoding.
- The hot path (handing a task to a waiting poll) is `cadence_fast._core.dispatcher`.
"""
