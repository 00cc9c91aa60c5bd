"""Helpers of the micro-benchmarks: the two `_core` builds, the event loop, throwaway databases."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Awaitable, Callable
from types import ModuleType
from typing import Any, TypeVar

import pytest

T = TypeVar("T")

IMPLS = ("compiled", "pure")

PG_SERVER = os.environ.get("CADENCE_FAST_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432")
MYSQL_SERVER = os.environ.get("CADENCE_FAST_TEST_MYSQL", "mysql://root@127.0.0.1:3306")


def core_module(name: str, impl: str) -> ModuleType:
    """`_core.<name>` in the requested build (skips `compiled` where none is installed)."""
    if impl == "pure":
        from cadence_fast import _core

        return _core.load_pure(name)
    try:
        from cadence_fast import _core
    except ImportError as e:  # NotCompiledError: an editable install without CADENCE_FAST_PURE=1
        pytest.skip(f"compiled _core unavailable: {e}")
    if not _core.is_compiled():
        pytest.skip("compiled _core not measured: CADENCE_FAST_PURE=1 (run from a `pip install .` build)")
    module: ModuleType = getattr(_core, name)
    assert str(module.__file__).endswith((".so", ".pyd")), f"{module.__file__} is not an extension module"
    return module


def run(loop: asyncio.AbstractEventLoop, make: Callable[[], Awaitable[T]]) -> T:
    return loop.run_until_complete(make())  # type: ignore[arg-type]


# --- throwaway databases for the per-adapter store benchmark -------------------------------


def create_pg_database() -> str:
    import psycopg

    name = f"cadence_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(f"{PG_SERVER}/postgres", autocommit=True, connect_timeout=5) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return f"{PG_SERVER}/{name}"


def drop_pg_database(url: str) -> None:
    import psycopg

    name = url.rsplit("/", 1)[1]
    with psycopg.connect(f"{PG_SERVER}/postgres", autocommit=True, connect_timeout=5) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _mysql_connect() -> Any:
    from urllib.parse import urlsplit

    import pymysql

    u = urlsplit(MYSQL_SERVER)
    return pymysql.connect(
        host=u.hostname or "127.0.0.1", port=u.port or 3306, user=u.username or "root",
        password=u.password or "", autocommit=True, connect_timeout=5,
    )  # fmt: skip


def create_mysql_database() -> str:
    name = f"cadence_bench_{uuid.uuid4().hex[:10]}"
    conn = _mysql_connect()
    with conn, conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")
    return f"{MYSQL_SERVER}/{name}"


def drop_mysql_database(url: str) -> None:
    name = url.rsplit("/", 1)[1]
    conn = _mysql_connect()
    with conn, conn.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
