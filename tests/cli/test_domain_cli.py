"""`cadence-fast domain ...` run as a subprocess against a live server."""

from __future__ import annotations

import json
import os
import subprocess

from tests.conftest import ServerProcess, cli_command, unique


def cli(
    server: ServerProcess | None, *args: str, address: str | None = None
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CADENCE_FAST_ADDRESS": address or (server.address if server else "")}
    return subprocess.run([*cli_command(), *args], capture_output=True, text=True, timeout=60, env=env)


def ok(server: ServerProcess, *args: str) -> str:
    result = cli(server, *args)
    assert result.returncode == 0, result.stderr
    return result.stdout


def fails(server: ServerProcess | None, *args: str, address: str | None = None) -> str:
    """Run a command that must fail: exit 1, one line on stderr, no traceback."""
    result = cli(server, *args, address=address)
    assert result.returncode == 1, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]


def test_domain_commands_end_to_end(server: ServerProcess) -> None:
    name = unique("cli")
    out = ok(
        server,
        "domain",
        "register",
        "--domain",
        name,
        "--retention",
        "5",
        "--description",
        "orders",
        "--owner_email",
        "team@example.com",
        "--data",
        "team=a,tier=1",
    )
    assert name in out

    described = json.loads(ok(server, "domain", "describe", "-d", name, "--json"))
    assert described["name"] == name
    assert described["description"] == "orders"
    assert described["owner_email"] == "team@example.com"
    assert described["data"] == {"team": "a", "tier": "1"}
    assert described["workflow_execution_retention_period"] == "432000s"
    assert described["status"] == "DOMAIN_STATUS_REGISTERED"

    # Readable output, by id and positionally.
    text = ok(server, "domain", "describe", "--domain_id", described["id"])
    assert "Name:" in text and name in text and "RetentionInDays:" in text
    assert json.loads(ok(server, "domain", "describe", name, "--json"))["id"] == described["id"]

    listed = json.loads(ok(server, "domain", "list", "--page_size", "1", "--json"))
    assert [d["id"] for d in listed if d["name"] == name] == [described["id"]]
    table = ok(server, "domain", "list")
    assert table.splitlines()[0].split()[:3] == ["NAME", "UUID", "STATUS"]
    assert any(line.split()[0] == name for line in table.splitlines()[1:])

    updated = json.loads(
        ok(
            server,
            "domain",
            "update",
            "-d",
            name,
            "--description",
            "orders v2",
            "--data",
            "tier=2",
            "--retention",
            "7",
            "--json",
        )
    )
    assert updated["description"] == "orders v2"
    assert updated["data"] == {"team": "a", "tier": "2"}
    assert updated["workflow_execution_retention_period"] == "604800s"
    assert "successfully updated" in ok(server, "domain", "update", name, "--owner_email", "b@example.com")
    assert json.loads(ok(server, "domain", "describe", name, "--json"))["owner_email"] == "b@example.com"

    assert "successfully deprecated" in ok(server, "domain", "deprecate", "--domain", name)
    assert (
        json.loads(ok(server, "domain", "describe", name, "--json"))["status"] == "DOMAIN_STATUS_DEPRECATED"
    )
    assert json.loads(ok(server, "domain", "delete", "--domain", name, "--json")) == {
        "name": name,
        "deleted": True,
    }
    assert "EntityNotExistsError" in fails(server, "domain", "describe", name)


def test_register_json_prints_the_domain(server: ServerProcess) -> None:
    name = unique("cli-json")
    registered = json.loads(ok(server, "domain", "register", name, "--json"))
    assert registered["name"] == name
    assert registered["workflow_execution_retention_period"] == "259200s"  # the cadence CLI default: 3 days


def test_errors_are_one_line_and_exit_1(server: ServerProcess) -> None:
    name = unique("cli-err")
    ok(server, "domain", "register", name)
    assert "DomainAlreadyExistsError" in fails(server, "domain", "register", name)
    line = fails(server, "domain", "register", unique("cli-err"), "--retention", "0")
    assert "INVALID_ARGUMENT" in line and "workflow_execution_retention_period" in line
    assert "EntityNotExistsError" in fails(server, "domain", "describe", unique("missing"))
    assert "deprecate" in fails(server, "domain", "delete", name)
    assert "--data" in fails(server, "domain", "update", name, "--data", "novalue")
    assert "nothing to update" in fails(server, "domain", "update", name)
    assert "domain name is required" in fails(server, "domain", "describe")
    assert "cannot reach the server" in fails(None, "domain", "list", address="127.0.0.1:1")


def test_address_flag_overrides_the_environment(server: ServerProcess) -> None:
    result = cli(None, "domain", "list", "--json", "--address", server.address, address="127.0.0.1:1")
    assert result.returncode == 0, result.stderr
    assert isinstance(json.loads(result.stdout), list)
