"""Two server processes on one SQLite file: the newer shard owner fences the older one.

SQLite serves several processes on one file (WAL, one writer at a time), so the
fencing scenario the PostgreSQL/MariaDB plugins prove in tests/plugins/test_fencing.py
must hold on the embedded store too; the scenario itself is shared, not copied.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.plugins.test_fencing import test_older_owner_is_fenced as older_owner_is_fenced

pytestmark = pytest.mark.e2e


def test_older_owner_is_fenced_on_one_sqlite_file(server_factory: type, tmp_path: Path) -> None:
    older_owner_is_fenced(f"sqlite:///{tmp_path}/shared.db", server_factory, tmp_path)
