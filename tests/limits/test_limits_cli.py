"""`lobstack limits` and the create command's lifetimes: set, shown, refused with the field named (exit 2) before
anything is contacted, and a create beyond a quota refused with the quota and the usage (exit 1)."""

from __future__ import annotations

import json

import pytest

from tests.clients.cli_run import arun
from tests.stack import Stack

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_the_cli_sets_shows_and_enforces_limits(stack: Stack) -> None:
    env = {
        "TEMPORAL_ADDRESS": stack.temporal.service_client.config.target_host,
        "LOBSTACK_TASK_QUEUE": stack.task_queue,
    }
    async with stack.workers():
        shown = await arun("limits", "show", "--account", "acme", env=env)
        assert shown.code == 0 and "max agents: no limit" in shown.out, shown
        changed = await arun(
            "limits", "set", "--account", "acme", "--max-agents", "0", "--max-vcpus", "1",
            "--default-idle-timeout", "2h", "--max-lifetime", "3d", "--max-monthly-eur", "50", "--json", env=env,
        )  # fmt: skip
        assert changed.code == 0, changed
        assert json.loads(changed.out) == {
            "account_id": "acme",
            "max_agents": 0,
            "max_vcpus": 1,
            "max_monthly_usd": 0,
            "max_monthly_eur": 50,
            "default_max_lifetime_s": 0,
            "default_idle_timeout_s": 7200,
            "max_lifetime_s": 259200,
        }
        shown = await arun("limits", "show", "--account", "acme", env=env)
        assert "max vCPUs: 1" in shown.out and "default idle timeout: 2h (7200s)" in shown.out, shown
        assert "max monthly spend in EUR: 50 EUR" in shown.out and "max monthly spend in USD: no limit" in shown.out
        assert "max lifetime an agent may ask for: 3d (259200s)" in shown.out

        # A medium agent needs 2 vCPUs (the local provider counts a size's nominal vCPUs): refused, nothing created.
        create = ("agent", "create", "--account", "acme", "--name", "helper")
        refused = await arun(*create, "--size", "medium", env=env)
        assert refused.code == 1 and "Traceback" not in refused.err, refused
        assert "quota max_vcpus of account acme is 1; its live agents hold 0 and this one needs 2" in refused.err
        too_long = await arun(*create, "--max-lifetime", "4d", env=env)
        assert too_long.code == 1 and "max_lifetime_s: 345600s is above account acme's maximum of 259200s" in (
            too_long.err
        ), too_long

    for args, said in (
        (("limits", "set", "--account", "acme"), "limits: name at least one limit to set"),
        (
            ("limits", "set", "--account", "acme", "--max-lifetime", "30s"),
            "max-lifetime: 30 is not allowed; must be 0 (none) or",
        ),
        (("limits", "set", "--account", "acme", "--default-idle-timeout", "soon"), "'soon' is not a duration"),
        (("limits", "set", "--account", "acme", "--max-agents", "-1"), "max-agents: '-1' is not a whole number"),
        (
            ("agent", "create", "--account", "acme", "--name", "x", "--idle-timeout", "5s"),
            "idle-timeout: 5 is not allowed; must be 0",
        ),
    ):
        done = await arun(*args, env={"TEMPORAL_ADDRESS": "127.0.0.1:1"})  # refused before anything is contacted
        assert done.code == 2 and said in done.err and "Traceback" not in done.err, done
