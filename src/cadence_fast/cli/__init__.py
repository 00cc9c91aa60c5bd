"""The `cadence-fast` command."""
