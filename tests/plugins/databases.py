"""Throwaway databases on the real servers the adapter tests use.

PostgreSQL (127.0.0.1:5432, user postgres) and MariaDB/MySQL (127.0.0.1:3306, root)
must be running (`scripts/ensure-databases` starts them). If one is down the tests that
need it FAIL with a message saying so: an adapter test never skips silently.
Hosts and users can be overridden with CADENCE_FAST_TEST_POSTGRES / _MYSQL (server URLs
without a database, e.g. postgresql://postgres@127.0.0.1:5432).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from urllib.parse import urlsplit

import psycopg
import pymysql
import pytest

PG_SERVER = os.environ.get("CADENCE_FAST_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432")
MYSQL_SERVER = os.environ.get("CADENCE_FAST_TEST_MYSQL", "mysql://root@127.0.0.1:3306")


def _down(what: str, server: str, e: BaseException) -> None:
    pytest.fail(
        f"{what} is not reachable at {server} ({e}); start it (scripts/ensure-databases) "
        "- the adapter tests need a real server and never skip",
        pytrace=False,
    )


def create_pg_database(prefix: str = "cadence_test") -> str:
    """A new empty PostgreSQL database; returns its store URL."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    try:
        with psycopg.connect(f"{PG_SERVER}/postgres", autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
    except psycopg.OperationalError as e:
        _down("PostgreSQL", PG_SERVER, e)
    return f"{PG_SERVER}/{name}"


def drop_pg_database(url: str) -> None:
    name = url.rsplit("/", 1)[1]
    with psycopg.connect(f"{PG_SERVER}/postgres", autocommit=True, connect_timeout=5) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def mysql_connect() -> pymysql.connections.Connection:
    """A root connection to the MySQL server, no database selected."""
    u = urlsplit(MYSQL_SERVER)
    return pymysql.connect(
        host=u.hostname or "127.0.0.1", port=u.port or 3306, user=u.username or "root",
        password=u.password or "", autocommit=True, connect_timeout=5,
    )


def create_mysql_database(prefix: str = "cadence_test") -> str:
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    try:
        conn = mysql_connect()
    except pymysql.err.OperationalError as e:
        _down("MariaDB/MySQL", MYSQL_SERVER, e)
    with conn, conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")
    return f"{MYSQL_SERVER}/{name}"


def drop_mysql_database(url: str) -> None:
    name = url.rsplit("/", 1)[1]
    conn = mysql_connect()
    with conn, conn.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS `{name}`")


#: Fixture params for tests that run on both server databases (selectable with -m postgres / -m mysql).
SERVER_DATABASES = [
    pytest.param("postgres", marks=pytest.mark.postgres),
    pytest.param("mysql", marks=pytest.mark.mysql),
]


@contextlib.contextmanager
def server_store(kind: str) -> Iterator[str]:
    """A fresh `kind` ("postgres" | "mysql") database made ready for `cadence-fast server start`
    the way an operator does it (`cadence-fast schema setup --store URL`); dropped afterwards."""
    url = create_pg_database() if kind == "postgres" else create_mysql_database()
    try:
        setup = subprocess.run(
            [sys.executable, "-m", "cadence_fast.cli.main", "schema", "setup", "--store", url],
            capture_output=True, text=True, timeout=120,
        )
        assert setup.returncode == 0, setup.stderr
        yield url
    finally:
        (drop_pg_database if kind == "postgres" else drop_mysql_database)(url)
