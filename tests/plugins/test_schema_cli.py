"""`cadence-fast schema setup|update|version` as a subprocess, on every SQL store of this machine.

Also: a server given a database without (or with an outdated, or a newer) schema
refuses to start with one line that names the command to run.
"""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from tests.conftest import cli_command, free_port
from tests.plugins.databases import (
    MYSQL_SERVER,
    PG_SERVER,
    SERVER_DATABASES,
    drop_mysql_database,
    drop_pg_database,
    mysql_connect,
)


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*cli_command(), *args], capture_output=True, text=True, timeout=120)


def _fresh(kind: str, tmp_path: Path) -> Iterator[str]:
    """The URL of a database that does NOT exist yet (setup must create it); dropped after."""
    name = f"cadence_test_{uuid.uuid4().hex[:10]}"
    if kind == "postgres":
        url = f"{PG_SERVER}/{name}"
        yield url
        drop_pg_database(url)
    elif kind == "mysql":
        url = f"{MYSQL_SERVER}/{name}"
        yield url
        drop_mysql_database(url)
    else:
        yield f"sqlite:///{tmp_path}/{name}.db"


@pytest.fixture(params=[*SERVER_DATABASES, "sqlite"])
def fresh_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    yield from _fresh(request.param, tmp_path)


@pytest.fixture(params=SERVER_DATABASES)
def fresh_server_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Server databases only: SQLite migrates itself on open and never needs `schema update`."""
    yield from _fresh(request.param, tmp_path)


def _set_recorded_version(url: str, version: int) -> None:
    """Tamper with the schema_version row, as an old or a future cadence-fast would have left it."""
    if url.startswith("postgresql"):
        with psycopg.connect(url, autocommit=True) as pg:
            pg.execute("UPDATE schema_version SET version = %s", (version,))
    elif url.startswith("mysql"):
        my = mysql_connect()
        with my, my.cursor() as cur:
            cur.execute(f"UPDATE `{url.rsplit('/', 1)[1]}`.schema_version SET version = %s", (version,))
    else:
        import sqlite3

        with sqlite3.connect(url.removeprefix("sqlite:///")) as lite:
            lite.execute("UPDATE schema_version SET version = ?", (version,))


def _server_refusal(url: str) -> str:
    """Start a server on `url`, expect it to exit 1 at once; return its one-line reason."""
    proc = subprocess.run(
        [*cli_command(), "server", "start", "--port", str(free_port()), "--store", url],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 1, (proc.stdout, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    return lines[0]


def test_setup_creates_database_and_schema_idempotently(fresh_url: str) -> None:
    v = run_cli("schema", "version", "--store", fresh_url, "--json")
    assert v.returncode == 0, v.stderr
    assert json.loads(v.stdout) == {"database": None, "code": 1, "status": "no schema"}

    first = run_cli("schema", "setup", "--store", fresh_url)
    assert first.returncode == 0, first.stderr
    assert "schema version 1 created" in first.stdout

    again = run_cli("schema", "setup", "--store", fresh_url)
    assert again.returncode == 0, again.stderr
    assert "already in place" in again.stdout

    v = run_cli("schema", "version", "--store", fresh_url)
    assert v.returncode == 0
    assert "database schema version: 1" in v.stdout and "up to date" in v.stdout

    up = run_cli("schema", "update", "--store", fresh_url)
    assert up.returncode == 0 and "up to date" in up.stdout


def test_update_without_schema_names_setup(fresh_url: str) -> None:
    r = run_cli("schema", "update", "--store", fresh_url)
    assert r.returncode == 1
    assert f"cadence-fast schema setup --store {fresh_url}" in r.stderr


@pytest.mark.parametrize("store", ["postgres", "mysql"])
def test_server_refuses_missing_schema_naming_the_command(store: str) -> None:
    # A database name nobody created: the server must not create anything itself.
    url = f"{PG_SERVER if store == 'postgres' else MYSQL_SERVER}/cadence_test_absent_{uuid.uuid4().hex[:8]}"
    reason = _server_refusal(url)
    assert f"cadence-fast schema setup --store {url}" in reason
    assert run_cli("schema", "version", "--store", url, "--json").stdout.strip().startswith('{"database": null')


def test_outdated_schema_refused_then_migrated(fresh_server_db_url: str) -> None:
    fresh_url = fresh_server_db_url
    assert run_cli("schema", "setup", "--store", fresh_url).returncode == 0
    # There is one schema version so far: "version 0" stands for an older cadence-fast's schema.
    _set_recorded_version(fresh_url, 0)
    assert f"cadence-fast schema update --store {fresh_url}" in _server_refusal(fresh_url)
    v = run_cli("schema", "version", "--store", fresh_url, "--json")
    assert json.loads(v.stdout)["status"] == "outdated"
    up = run_cli("schema", "update", "--store", fresh_url)
    assert up.returncode == 0 and "migrated from version 0 to 1" in up.stdout, up.stderr
    v = run_cli("schema", "version", "--store", fresh_url, "--json")
    assert json.loads(v.stdout)["status"] == "up to date"


def test_newer_schema_refused(fresh_url: str) -> None:
    assert run_cli("schema", "setup", "--store", fresh_url).returncode == 0
    _set_recorded_version(fresh_url, 99)
    assert "newer" in _server_refusal(fresh_url)
    r = run_cli("schema", "setup", "--store", fresh_url)
    assert r.returncode == 1 and "newer" in r.stderr


def test_unknown_scheme_lists_the_known_ones() -> None:
    r = run_cli("schema", "version", "--store", "nosuchdb://x/y")
    assert r.returncode == 2
    assert "'nosuchdb'" in r.stderr and "postgresql" in r.stderr and "mysql" in r.stderr
