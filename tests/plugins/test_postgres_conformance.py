"""The storage conformance kit against the PostgreSQL plugin on a real server."""

from __future__ import annotations

import pytest

from cadence_fast.persistence.testing.suite import *  # noqa: F403

pytestmark = pytest.mark.postgres


@pytest.fixture
def store_url(pg_url: str) -> str:
    return pg_url
