"""The operator commands added by `add_ops_commands`, run as `lobstack` would run them, against the real servers."""

from __future__ import annotations

import argparse
import asyncio
import json
import uuid
from collections.abc import Sequence
from pathlib import Path

import pytest

import devstack
from clients.ops_cli import add_ops_commands
from tests.maintenance.helpers import registered
from tests.stack import Stack


def lobstack(argv: Sequence[str]) -> int:
    """The CLI's shape: global options, then the subcommands (the lead's build_parser calls add_ops_commands)."""
    parser = argparse.ArgumentParser(prog="lobstack")
    parser.add_argument("--address")
    parser.add_argument("--namespace")
    parser.add_argument("--task-queue")
    sub = parser.add_subparsers(dest="command", required=True)
    add_ops_commands(sub)
    args = parser.parse_args(argv)
    return int(args.func(args))


def test_bad_numbers_are_refused_naming_the_field(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        lobstack(["schedules", "install", "--sweep-every-minutes", "0"])
    assert exit_info.value.code == 2
    assert "sweep_every_minutes: 0 is not allowed" in capsys.readouterr().err


@pytest.mark.asyncio(loop_scope="session")
async def test_sweep_dry_run_and_rotation_print_their_results(stack: Stack, capsys: pytest.CaptureFixture[str]) -> None:
    address = stack.temporal.service_client.config.target_host
    common = ["--address", address, "--task-queue", stack.task_queue]
    async with stack.workers():
        # asyncio.run inside, as from a shell: off this test's event loop.
        assert await asyncio.to_thread(lobstack, [*common, "sweep", "--dry-run"]) == 0
        swept = json.loads(capsys.readouterr().out)
        assert swept["dry_run"] is True and "found" in swept
        assert await asyncio.to_thread(lobstack, [*common, "keys", "rotate", "--batch-size", "10"]) == 0
        rotated = json.loads(capsys.readouterr().out)
        assert {"agents", "keys_rotated", "rewrapped", "min_raised"} <= set(rotated)


def test_agent_data_put_get_list(
    stack: Stack,
    openbao: devstack.OpenBaoDev,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsysbinary: pytest.CaptureFixture[bytes],
) -> None:
    agent_id = f"t-{uuid.uuid4().hex[:16]}"
    monkeypatch.setenv("VAULT_ADDR", openbao.addr)
    monkeypatch.setenv("VAULT_TOKEN", openbao.root_token)
    monkeypatch.setenv("DATABASE_URL", stack.registry.engine.url.render_as_string(hide_password=False))
    stack.vault.mint(agent_id, account_id="acme")
    try:
        stack.registry.record(registered(agent_id))
        secret = tmp_path / "value"
        secret.write_bytes(b"\x00binary customer value\xff")
        assert (
            lobstack(["agent-data", "put", agent_id, "smtp.password", "--account", "acme", "--file", str(secret)]) == 0
        )
        out = capsysbinary.readouterr().out
        assert b"binary customer value" not in out and b"key version 1" in out
        assert lobstack(["agent-data", "get", agent_id, "smtp.password"]) == 0
        assert capsysbinary.readouterr().out == secret.read_bytes()
        assert lobstack(["agent-data", "list", agent_id]) == 0
        assert capsysbinary.readouterr().out == b"smtp.password\n"
        assert lobstack(["agent-data", "get", agent_id, "nope"]) == 1
    finally:
        stack.vault.destroy(agent_id)
