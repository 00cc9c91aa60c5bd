"""An example storage adapter distribution: `example:///path.db` stores, kept in SQLite."""
