"""The stack `make chaos` runs (devstack/stack.py with chaos's kind of options): the worker in its own process,
configured from the environment as in production, OpenBao on Raft storage, Temporal's state in a file. A lifecycle
runs on it end to end, and the stack stops the worker process with everything else."""

from __future__ import annotations

from pathlib import Path

import pytest

from clients.client import LobstackClient
from devstack import OpenBaoServer
from devstack.stack import StackOptions, dev_stack
from workflows.models import AgentState
from workflows.spec import AgentSpec

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_a_lifecycle_runs_on_a_worker_process_that_stops_with_the_stack(tmp_path: Path) -> None:
    options = StackOptions(
        providers=("local",),
        worker="process",
        restartable_vault=True,
        temporal_state=tmp_path / "temporal.db",
    )
    async with dev_stack(tmp_path / "home", options) as stack:
        assert stack.worker is not None and stack.worker.process is not None
        assert isinstance(stack.openbao, OpenBaoServer)
        worker = stack.worker.process.popen
        client = LobstackClient(stack.client)
        agent_id = await client.create_agent(AgentSpec(account_id="acme", name="helper", skills=["web.search"]))
        status = await client.wait_for(agent_id, {AgentState.RUNNING}, timeout_s=120)
        assert status.health == "healthy"
        await client.destroy(agent_id, requested_by="test", reason="done")
        assert (await client.result(agent_id)).state == AgentState.DESTROYED
        assert stack.vault.residue(agent_id).total == 0
        assert worker.poll() is None
    assert worker.poll() is not None, "the worker process outlived its stack"
    assert (tmp_path / "temporal.db").exists()
