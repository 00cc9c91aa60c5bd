"""What `cadence-fast` loads before a command runs.

Every call builds the whole parser (all command groups), so the group modules import gRPC,
protobuf, the official client's stubs and the store layer inside their handlers. These tests
keep it so: `--help`, a malformed command line or a `schema` command must not pay for the gRPC
stack.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.conftest import sqlite_url

#: Modules that only a command talking to a frontend (or the server) needs.
HEAVY = ("grpc", "cadence", "google.protobuf")

# Runs the CLI in-process, then names the heavy modules it loaded (last line of stderr).
_PROBE = f"""
import sys
from cadence_fast.cli.main import main
try:
    code = main(sys.argv[1:])
except SystemExit as e:
    code = e.code
print("LOADED", ",".join(m for m in {HEAVY!r} if m in sys.modules), file=sys.stderr)
sys.exit(code)
"""


def loaded_by(*args: str) -> tuple[int, list[str]]:
    result = subprocess.run(
        [sys.executable, "-c", _PROBE, *args], capture_output=True, text=True, timeout=60
    )
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("LOADED"), result.stderr
    names = last.removeprefix("LOADED").strip()
    return result.returncode, names.split(",") if names else []


def test_help_loads_no_grpc_or_protobuf() -> None:
    assert loaded_by("--help") == (0, [])
    assert loaded_by("workflow", "--help") == (0, [])


def test_a_malformed_command_line_loads_no_grpc_or_protobuf() -> None:
    assert loaded_by("workflow", "list", "--domain", "d", "--pagesize", "ten") == (2, [])


def test_schema_commands_load_no_grpc(tmp_path: Path) -> None:
    code, heavy = loaded_by("schema", "version", "--store", sqlite_url(tmp_path / "s.db"))
    assert code == 0
    assert heavy == []


def test_a_command_that_calls_the_frontend_loads_the_stubs() -> None:
    """The probe sees the imports a handler makes (the tests above are not vacuous)."""
    code, heavy = loaded_by("domain", "describe", "nosuch", "--address", "127.0.0.1:1")
    assert code == 1
    assert heavy == list(HEAVY)
