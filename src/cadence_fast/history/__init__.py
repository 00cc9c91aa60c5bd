"""The history engine: shards, mutable state, decisions, transfer and timer queues."""
