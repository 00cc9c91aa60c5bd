"""`cadence-fast server start` as a process: startup failures, signals, the config file."""

from __future__ import annotations

import signal
import socket
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import LISTEN_RE, ServerProcess, cli_command, free_port, sqlite_url

#: The `server_factory` fixture: ServerProcess's arguments, with the store optional.
ServerFactory = Callable[..., ServerProcess]


def start_fails(*args: str) -> str:
    """Run a server start that must fail: non-zero exit, one stderr line, no traceback."""
    result = subprocess.run(
        [*cli_command(), "server", "start", *args], capture_output=True, text=True, timeout=60
    )
    assert result.returncode != 0, result
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_port_in_use_is_one_clear_line(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        line = start_fails("--port", str(port), "--db", str(tmp_path / "a.db"))
    assert str(port) in line
    assert "in use" in line


def test_unreadable_store_is_one_clear_line(tmp_path: Path) -> None:
    line = start_fails("--port", str(free_port()), "--db", str(tmp_path))  # a directory, not a database
    assert str(tmp_path) in line


def test_unknown_store_scheme_is_one_clear_line() -> None:
    line = start_fails("--port", str(free_port()), "--store", "nosuchdb://x")
    assert "nosuchdb" in line


def test_sigterm_exits_0(server_factory: ServerFactory) -> None:
    proc = server_factory().start()
    assert proc.stop(signal.SIGTERM) == 0


def test_sigint_exits_0(server_factory: ServerFactory) -> None:
    proc = server_factory().start()
    assert proc.stop(signal.SIGINT) == 0


def test_config_file_with_flags_overriding_it(tmp_path: Path) -> None:
    config_port, flag_port = free_port(), free_port()
    db = tmp_path / "from-config.db"
    config = tmp_path / "server.toml"
    config.write_text(f'port = {config_port}\nstore = "{sqlite_url(db)}"\nlog_level = "info"\nshards = 2\n')
    proc = subprocess.Popen(
        [*cli_command(), "server", "start", "--config", str(config), "--port", str(flag_port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        match = LISTEN_RE.search(line)
        assert match, line
        assert int(match.group(2)) == flag_port  # the flag wins over the file
        assert str(db) in line  # the file's store is used
        assert db.exists()
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0


def test_bad_config_file_is_one_clear_line(tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text('port = 1\nno_such_setting = "x"\n')
    line = start_fails("--config", str(config))
    assert "no_such_setting" in line
    missing = start_fails("--config", str(tmp_path / "absent.toml"))
    assert "absent.toml" in missing


def test_unknown_transport_in_the_config_file_is_one_clear_line(tmp_path: Path) -> None:
    config = tmp_path / "server.toml"
    config.write_text('transport = "carrier-pigeon"\n')
    line = start_fails("--port", str(free_port()), "--db", str(tmp_path / "a.db"), "--config", str(config))
    assert "transport" in line and "carrier-pigeon" in line


@pytest.mark.parametrize("transport", ["native", "grpcio"])
def test_both_transports_serve_the_api(server_factory: ServerFactory, transport: str) -> None:
    import asyncio

    import grpc
    from cadence.api.v1 import service_domain_pb2 as dm
    from cadence.api.v1 import service_domain_pb2_grpc as dmg
    from google.protobuf import duration_pb2

    proc = server_factory(extra=["--transport", transport]).start()

    async def talk() -> None:
        async with grpc.aio.insecure_channel(proc.address) as channel:
            stub = dmg.DomainAPIStub(channel)
            await stub.RegisterDomain(
                dm.RegisterDomainRequest(
                    name="transported", workflow_execution_retention_period=duration_pb2.Duration(seconds=86400)
                ),
                timeout=10,
            )
            reply = await stub.DescribeDomain(dm.DescribeDomainRequest(name="transported"), timeout=10)
            assert reply.domain.name == "transported"
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await stub.DescribeDomain(dm.DescribeDomainRequest(name="nope"), timeout=10)
            assert info.value.code() == grpc.StatusCode.NOT_FOUND

    asyncio.run(talk())
    assert proc.stop(signal.SIGTERM) == 0
