"""The registry's database down in the middle of provisioning: the lifecycle's records wait for it (their activity
retries a `RegistryUnavailable` without end), and none is lost or written twice."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest
import sqlalchemy

from contracts.models import AgentState
from tests.stack import Stack, eventually
from tests.workflows.test_lifecycle import _open_gate, _wait_vm_created, actions, assert_nothing_left

pytestmark = pytest.mark.asyncio(loop_scope="session")


def _database(admin_url: str, name: str, *, up: bool) -> None:
    """Take the agent registry's database down as an outage does (every connection dropped, new ones refused), or
    bring it back."""
    engine = sqlalchemy.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(sqlalchemy.text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS {"true" if up else "false"}'))
        if not up:
            conn.execute(
                sqlalchemy.text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = :name AND pid <> pg_backend_pid()"
                ),
                {"name": name},
            )
    engine.dispose()


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_a_registry_outage_mid_provisioning_holds_the_records_and_loses_none(
    stack_any_db: Stack,
    database_url: str,
    postgres_admin_url: str,
    gated_argv: tuple[list[str], Path],
    caplog: pytest.LogCaptureFixture,
) -> None:
    stack, (argv, gate) = stack_any_db, gated_argv
    name = database_url.rsplit("/", 1)[1]
    caplog.set_level(logging.WARNING, logger="temporalio.activity")
    async with stack.workers(stack.local_with(argv)):
        agent_id = await stack.client.create_agent(stack.spec())
        await _wait_vm_created(stack, agent_id)
        before = ["agent.requested", "secrets.minted", "vm.created"]

        async def recorded(wanted: list[str]) -> bool | None:
            return True if actions(stack, agent_id) == wanted else None

        # The VM shows in the status a moment before its record is written.
        await eventually(lambda: recorded(before), what=f"the records {before}")

        await asyncio.to_thread(_database, postgres_admin_url, name, up=False)
        try:
            await asyncio.to_thread(_open_gate, gate)

            # The VM boots, and its record meets the outage: the activity fails and is retried.
            async def met() -> bool | None:
                return True if "record_transition: database unavailable" in caplog.text else None

            await eventually(met, timeout_s=60, what="the record meeting the outage")
            status = await stack.client.status(agent_id)
            assert status.state == AgentState.PROVISIONING, "nothing moves on before its record is written"
        finally:
            await asyncio.to_thread(_database, postgres_admin_url, name, up=True)

        running = await stack.client.wait_for(agent_id, {AgentState.RUNNING}, timeout_s=90)
        assert running.health == "healthy"
        # Every transition recorded exactly once, in order, although its first attempts failed.
        assert actions(stack, agent_id) == [*before, "vm.running", "agent.running"]
        pid = stack.local.pid_of(agent_id)
        await stack.client.destroy(agent_id, requested_by="dave")
        result = await stack.client.result(agent_id)
    assert result.state == AgentState.DESTROYED
    assert_nothing_left(stack, agent_id, pid)
