"""The built-in SQLite adapter: the embedded default store."""
