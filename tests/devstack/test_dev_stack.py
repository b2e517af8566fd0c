"""One dev stack (devstack/stack.py, what `lobstack dev` and the demo run), started while another process holds the
Web UI port picked for it, then checked three ways: it started again on another port with the codec server's CORS
following it; its logs and state are for this user only; and its agents' AppRole mount never locks an agent out."""

from __future__ import annotations

import socket
import stat
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import pytest_asyncio

import devstack
from devstack.stack import DevStack, StackOptions, dev_stack
from tests.deploy.test_vault_lockout import wrong_logins_then_bridge_login

pytestmark = pytest.mark.asyncio(loop_scope="session")


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def stack_and_held_port(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[tuple[DevStack, int]]:
    home = tmp_path_factory.mktemp("dev-stack") / "home"
    with socket.socket() as taken:  # another process's server, on the port picked first for the Web UI
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        held = taken.getsockname()[1]
        picks = [held]
        async with dev_stack(
            home, StackOptions(codec=True), pick_port=lambda: picks.pop(0) if picks else devstack.free_port()
        ) as s:
            yield s, held


async def test_a_lost_ui_port_restarts_the_ui_and_codec_cors_follows_it(stack_and_held_port: tuple[DevStack, int]):
    stack, held = stack_and_held_port
    ui_port = int(stack.temporal.ui_url.rsplit(":", 1)[1])
    assert ui_port != held
    async with httpx.AsyncClient(timeout=10) as http:
        assert (await http.get(f"{stack.temporal.ui_url}/")).status_code == 200
        origin = f"http://127.0.0.1:{ui_port}"
        preflight = await http.options(
            f"{stack.codec_url}/default/decode",
            headers={"Origin": origin, "Access-Control-Request-Method": "POST"},
        )
    assert preflight.headers.get("access-control-allow-origin") == origin


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


async def test_dev_stack_logs_and_state_are_for_this_user_only(stack_and_held_port: tuple[DevStack, int]):
    stack, _ = stack_and_held_port
    home = stack.home
    for directory in (home, home / "logs", home / "cloudsim", home / "local-vms"):
        assert _mode(directory) == 0o700, directory
    logs = {p.name: _mode(p) for p in home.rglob("*.log")}
    assert any(name.startswith("openbao-") for name in logs) and any(name.startswith("temporal-") for name in logs)
    assert "cloudsim.log" in logs
    assert set(logs.values()) == {0o600}, logs


async def test_dev_stack_agents_are_never_locked_out_of_openbao(stack_and_held_port: tuple[DevStack, int]):
    stack, _ = stack_and_held_port
    wrong_logins_then_bridge_login(stack.vault, "t-devlockout")
