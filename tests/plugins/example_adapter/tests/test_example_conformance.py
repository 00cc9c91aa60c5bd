"""How a third-party adapter runs the conformance kit: import the suite, define `store_url`."""

from __future__ import annotations

from pathlib import Path

import pytest

from cadence_fast.persistence.testing.suite import *  # noqa: F403


@pytest.fixture
def store_url(tmp_path: Path) -> str:
    return f"example:///{tmp_path}/kit.db"
