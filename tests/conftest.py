"""Shared test machinery: async tests, and real server processes.

Async tests (`async def test_...`) run on a fresh event loop each. The `server`
fixtures start `cadence-fast server start` as a subprocess, exactly as a user would,
and hand out its address; the official client (`cadence-python-client`) talks to it.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

LISTEN_RE = re.compile(r"listening on (\S+):(\d+)")


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    if inspect.iscoroutinefunction(pyfuncitem.obj):
        args = {name: pyfuncitem.funcargs[name] for name in pyfuncitem._fixtureinfo.argnames}
        asyncio.run(pyfuncitem.obj(**args))
        return True
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cli_command() -> list[str]:
    """How to run the `cadence-fast` command of the package under test."""
    return [sys.executable, "-m", "cadence_fast.cli.main"]


class ServerProcess:
    """A real `cadence-fast server start` subprocess."""

    def __init__(self, store: str, port: int | None = None, extra: list[str] | None = None, log: Path | None = None):
        self.store = store
        self.port = port or free_port()
        self.extra = extra or []
        self.log_path = log
        self.proc: subprocess.Popen[str] | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> ServerProcess:
        cmd = [*cli_command(), "server", "start", "--port", str(self.port), "--store", self.store, *self.extra]
        stderr = open(self.log_path, "a") if self.log_path else subprocess.DEVNULL  # noqa: SIM115
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=stderr, text=True)
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        line = ""
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if LISTEN_RE.search(line):
                return self
            if not line and self.proc.poll() is not None:
                break
        self.kill()
        log = self.log_path.read_text() if self.log_path and self.log_path.exists() else ""
        raise RuntimeError(f"server did not start: {line!r}\n{log[-3000:]}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int:
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        finally:
            self.proc = None

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def restart(self) -> ServerProcess:
        self.stop()
        return self.start()


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


@pytest.fixture
def server_factory(tmp_path: Path) -> Iterator[type[ServerProcess]]:
    """Start servers freely in a test; every one is killed at the end."""
    started: list[ServerProcess] = []

    class _Factory(ServerProcess):
        def __init__(self, store: str | None = None, **kw: object) -> None:
            super().__init__(store or sqlite_url(tmp_path / f"{uuid.uuid4().hex[:8]}.db"), log=tmp_path / "server.log", **kw)  # type: ignore[arg-type]
            started.append(self)

    yield _Factory
    for s in started:
        s.kill()


#: Stores a module marked `all_stores` runs on (issue 5: the execution e2e tests run on every
#: SQL store). -m postgres / -m mysql select the server-database variants.
STORE_KINDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
    pytest.param("mysql", id="mysql", marks=pytest.mark.mysql),
]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if (
        "server" in metafunc.fixturenames
        and metafunc.definition.get_closest_marker("all_stores") is not None
        and not os.environ.get("CADENCE_FAST_TEST_STORE")
    ):
        metafunc.parametrize("server_kind", STORE_KINDS, indirect=True, scope="module")


@pytest.fixture(scope="module")
def server_kind(request: pytest.FixtureRequest) -> str:
    """The kind of store of the module's server: sqlite unless the module is parametrized."""
    return str(getattr(request, "param", "sqlite"))


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, server_kind: str) -> Iterator[ServerProcess]:
    """One server per test module: on its own SQLite file, on a fresh PostgreSQL / MariaDB
    database for modules marked `all_stores`, or on CADENCE_FAST_TEST_STORE if set."""
    tmp = tmp_path_factory.mktemp("server")
    with contextlib.ExitStack() as stack:
        store = os.environ.get("CADENCE_FAST_TEST_STORE")
        if not store and server_kind == "sqlite":
            store = sqlite_url(tmp / "cadence.db")
        elif not store:
            from tests.plugins.databases import server_store

            store = stack.enter_context(server_store(server_kind))
        proc = ServerProcess(store, log=tmp / "server.log").start()
        yield proc
        proc.kill()


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"
