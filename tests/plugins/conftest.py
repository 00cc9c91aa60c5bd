"""Fixtures of the adapter tests: one throwaway database per server per test session.

See `databases.py`: the servers must be running; a down server fails the tests that
need it (never a silent skip).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.plugins.databases import (
    SERVER_DATABASES,
    create_mysql_database,
    create_pg_database,
    drop_mysql_database,
    drop_pg_database,
    server_store,
)

#: The example adapter is a separate distribution with its own tests; the discovery test
#: installs it and runs them in a subprocess, where its entry point is on the path.
collect_ignore = ["example_adapter"]


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """A PostgreSQL database for the whole session (tests use unique ids), dropped at the end."""
    url = create_pg_database()
    yield url
    drop_pg_database(url)


@pytest.fixture(scope="session")
def mysql_url() -> Iterator[str]:
    url = create_mysql_database()
    yield url
    drop_mysql_database(url)


@pytest.fixture(params=SERVER_DATABASES)
def server_db(request: pytest.FixtureRequest) -> tuple[str, str]:
    """(kind, url) of the session database of each SQL server, "postgres" or "mysql"."""
    url = request.getfixturevalue("pg_url" if request.param == "postgres" else "mysql_url")
    return request.param, url


@pytest.fixture(params=SERVER_DATABASES)
def server_store_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh PostgreSQL / MariaDB database with the schema set up, for real server processes."""
    with server_store(request.param) as url:
        yield url
