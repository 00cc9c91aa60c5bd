"""The storage conformance kit against the MySQL plugin on a real MariaDB/MySQL server."""

from __future__ import annotations

import pytest

from cadence_fast.persistence.testing.suite import *  # noqa: F403

pytestmark = pytest.mark.mysql


@pytest.fixture
def store_url(mysql_url: str) -> str:
    return mysql_url
