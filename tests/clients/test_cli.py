"""The CLI refuses bad input before it connects to anything: exit 2 and a message naming the field and what is allowed.

Each case points the CLI at a closed port: if validation let a bad value through, the command would fail differently
(a connection error), so the exit code and message prove the refusal happened first.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from workers.devstack import free_port

CREATE = ["agent", "create", "--account", "acme", "--name", "helper"]


def lobstack(*args: str) -> subprocess.CompletedProcess[str]:
    closed = f"127.0.0.1:{free_port()}"
    return subprocess.run(
        [sys.executable, "-m", "clients.cli", "--address", closed, *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    ("extra", "field", "allowed"),
    [
        (["--region", "mars"], "region", "us-east, us-west, eu-central, eu-north, ap-southeast"),
        (["--provider", "aws"], "provider", "local, hetzner, digitalocean, vultr, auto"),
        (["--provider", "hetzner", "--region", "eu-central", "--strict-region"], "region", "refuses substitutes"),
        (["--size", "huge"], "size", "small, medium, large"),
        (["--skill", "Rm -rf"], "skills", "starting with a letter"),
        (["--skill", "a", "--skill", "a"], "skills", "once"),
        (["--agent-id", "UPPER"], "agent_id", "a-z, 0-9 and '-'"),
        (["--agent-id", "x" * 41], "agent_id", "1-40 characters"),
        (["--approval-timeout", "5"], "approval_timeout_s", "from 60 to"),
        (["--health-timeout", "0"], "health_timeout_s", "from 1 to"),
    ],
)
def test_create_refuses_bad_values(extra: list[str], field: str, allowed: str) -> None:
    done = lobstack(*CREATE, *extra)
    assert done.returncode == 2, done.stderr
    assert f"{field}:" in done.stderr and allowed in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("", "is required"),
        ("-leading-dash", "is not allowed"),
        ("has space", "is not allowed"),
        ("Ünïcode", "is not allowed"),
        ("x" * 64, "1-63 characters"),
        ("bad;name$(reboot)", "is not allowed"),
    ],
)
def test_create_refuses_bad_names(name: str, message: str) -> None:
    done = lobstack("agent", "create", "--account", "acme", f"--name={name}")
    assert done.returncode == 2
    assert "name:" in done.stderr and message in done.stderr


def test_commands_on_an_agent_check_its_id_first() -> None:
    for args in (
        ["agent", "status", "../etc"],
        ["agent", "destroy", "A B"],
        ["agent", "approve", "x_y", "--approver", "a"],
    ):
        done = lobstack(*args)
        assert done.returncode == 2 and "agent_id:" in done.stderr, args


def test_an_empty_approver_is_refused() -> None:
    done = lobstack("agent", "approve", "agent-1", "--approver", " ")
    assert done.returncode == 2 and "approver: is required" in done.stderr


def test_an_unreachable_temporal_is_a_clear_error_not_a_traceback() -> None:
    done = lobstack(*CREATE)
    assert done.returncode == 1
    assert "cannot reach Temporal" in done.stderr and "Traceback" not in done.stderr
