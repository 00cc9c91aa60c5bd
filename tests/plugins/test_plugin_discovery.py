"""A storage adapter distributed outside this repository plugs in through its entry point alone.

The example adapter (tests/plugins/example_adapter: its own pyproject, scheme
`example://`) is pip-installed into a temporary directory, never imported by this
test: subprocesses that have that directory on their path find it through the
`cadence_fast.storage` entry point group, exactly as a third party's adapter would be.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import cli_command

EXAMPLE = Path(__file__).parent / "example_adapter"

PROBE = """
import sys
from cadence_fast.persistence import create_store
try:
    store = create_store(sys.argv[1])
except ValueError as e:
    print("ERROR", e)
else:
    print("ADAPTER", type(store).__module__, type(store).__name__)
"""


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    target = tmp_path_factory.mktemp("example-adapter-install")
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check", "--no-deps",
         "--target", str(target), str(EXAMPLE)],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, f"pip install of the example adapter failed:\n{proc.stdout}\n{proc.stderr}"
    yield target


def _env(extra_path: Path | None) -> dict[str, str]:
    env = dict(os.environ)
    if extra_path is not None:
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(extra_path), env.get("PYTHONPATH", "")) if p)
    return env


def _probe(url: str, path: Path | None) -> str:
    proc = subprocess.run([sys.executable, "-c", PROBE, url], capture_output=True, text=True, env=_env(path), timeout=60)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


def test_not_known_without_the_distribution(tmp_path: Path) -> None:
    out = _probe(f"example:///{tmp_path}/x.db", None)
    assert out.startswith("ERROR") and "'example'" in out


def test_found_through_its_entry_point(installed: Path, tmp_path: Path) -> None:
    assert _probe(f"example:///{tmp_path}/x.db", installed) == "ADAPTER cadence_fast_example.plugin ExampleStore"


def test_schema_command_serves_the_plugin(installed: Path, tmp_path: Path) -> None:
    url = f"example:///{tmp_path}/cli.db"
    setup = subprocess.run([*cli_command(), "schema", "setup", "--store", url],
                           capture_output=True, text=True, env=_env(installed), timeout=60)
    assert setup.returncode == 0, setup.stderr
    assert "schema version 1 created" in setup.stdout
    version = subprocess.run([*cli_command(), "schema", "version", "--store", url, "--json"],
                             capture_output=True, text=True, env=_env(installed), timeout=60)
    assert version.stdout.strip() == '{"database": 1, "code": 1, "status": "up to date"}'


def test_third_party_runs_the_conformance_kit(installed: Path, tmp_path: Path) -> None:
    # Outside this repository's tests tree and config, as in the adapter author's own repo.
    tests = tmp_path / "adapter-repo"
    shutil.copytree(EXAMPLE / "tests", tests / "tests")
    (tests / "pytest.ini").write_text("[pytest]\n")
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-c", str(tests / "pytest.ini"),
         "--rootdir", str(tests), str(tests / "tests")],
        capture_output=True, text=True, env=_env(installed), timeout=600, cwd=tests,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert " passed" in proc.stdout and "failed" not in proc.stdout
