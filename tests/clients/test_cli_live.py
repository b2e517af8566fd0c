"""The CLI against a live stack: what an operator types, end to end, on the Temporal dev server."""

from __future__ import annotations

import asyncio
import json
import sys
import uuid

import pytest
from temporalio.testing import WorkflowEnvironment

from contracts.models import AgentState
from tests.stack import Stack

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def cli(env: WorkflowEnvironment, stack: Stack, *args: str) -> tuple[int, str, str]:
    address = env.client.service_client.config.target_host
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "clients.cli",
        "--address",
        address,
        "--task-queue",
        stack.task_queue,
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=120)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_operator_session(temporal_dev: WorkflowEnvironment, stack: Stack) -> None:
    agent_id = f"cli-{uuid.uuid4().hex[:12]}"
    async with stack.workers():
        create = [
            "agent",
            "create",
            "--account",
            "acme",
            "--name",
            "clitest",
            "--agent-id",
            agent_id,
            "--skill",
            "web.search",
            "--require-approval",
        ]
        code, out, err = await cli(temporal_dev, stack, *create)
        assert (code, out.strip()) == (0, agent_id), err

        code, out, _ = await cli(temporal_dev, stack, *create)
        assert code == 1

        code, out, err = await cli(temporal_dev, stack, "agent", "status", agent_id, "--json")
        assert code == 0, err
        status = json.loads(out)
        assert status["state"] == "pending_approval" and "signal `approve`" in status["waiting_for"]

        code, out, err = await cli(
            temporal_dev, stack, "agent", "approve", agent_id, "--approver", "alice", "--reason", "ticket 7"
        )
        assert code == 0 and "approved" in out, err
        running = await stack.client.wait_for(agent_id, {AgentState.RUNNING}, timeout_s=60)

        code, out, err = await cli(temporal_dev, stack, "agent", "status", agent_id)
        assert code == 0 and running.vm_id in out and "running" in out, err
        code, out, err = await cli(temporal_dev, stack, "agent", "list")
        assert code == 0 and agent_id in out, err

        code, out, err = await cli(
            temporal_dev, stack, "agent", "destroy", agent_id, "--requested-by", "alice", "--wait"
        )
        assert code == 0 and f"{agent_id}: destroyed" in out, err
    assert stack.vault.residue(agent_id).total == 0 and stack.vms_of(agent_id) == 0


async def test_unknown_agent_is_a_clear_error(temporal_dev: WorkflowEnvironment, stack: Stack) -> None:
    async with stack.workers():
        code, _, err = await cli(temporal_dev, stack, "agent", "status", "no-such-agent")
    assert code == 1 and "no agent 'no-such-agent'" in err and "Traceback" not in err
