"""Fixtures of the official-client e2e tests: a registered domain on the module's server."""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

# tests/e2e/workflows.py is imported as `workflows` whether or not tests/e2e is a package.
sys.path.insert(0, str(Path(__file__).parent))

from workflows import register_domain  # noqa: E402


@pytest.fixture(scope="module")
def domain(server: Any) -> Iterator[str]:
    """A domain registered through the client's DomainAPI stub on the module's server."""
    name = f"e2e-{uuid.uuid4().hex[:10]}"
    register_domain(server.address, name)
    yield name
