"""Registering custom search attributes in the server's config file: bad entries stop the start."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.conftest import cli_command, free_port


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ('"Bad-Name" = "keyword"', "search attribute name 'Bad-Name' must be letters, digits and _"),
        ('"1st" = "int"', "search attribute name '1st'"),
        ('WorkflowID = "keyword"', "search attribute 'WorkflowID' is a Cadence system attribute"),
        ('Env = "blob"', "search attribute 'Env' has unknown type 'blob'"),
    ],
)
def test_bad_search_attribute_config(tmp_path: Path, entry: str, message: str) -> None:
    config = tmp_path / "server.toml"
    config.write_text(f"[search_attributes]\n{entry}\n")
    cmd = [*cli_command(), "server", "start", "--config", str(config), "--port", str(free_port())]
    result = subprocess.run(
        [*cmd, "--db", str(tmp_path / "x.db")], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr
