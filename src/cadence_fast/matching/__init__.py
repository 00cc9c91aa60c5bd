"""Matching: task lists, long polls, sync match, the persisted backlog."""
