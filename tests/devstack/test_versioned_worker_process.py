"""A development stack whose worker runs in its own process with Worker Versioning: the process reads its version
from the environment the stack gives it, the stack makes that version current, and lifecycles run pinned to it."""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.enums.v1 import VersioningBehavior
from temporalio.api.workflowservice.v1 import DescribeWorkflowExecutionRequest

from clients.client import LobstackClient
from contracts.identifiers import workflow_id
from contracts.models import AgentState
from contracts.spec import AgentSpec
from devstack.stack import StackOptions, dev_stack
from workers.settings import Versioning

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_a_versioned_worker_process_is_made_current_and_runs_lifecycles_pinned_to_it(tmp_path: Path) -> None:
    versioning = Versioning(deployment_name="lobstack-process", build_id="b1", enabled=True)
    options = StackOptions(providers=("local",), worker="process", versioning=versioning)
    async with dev_stack(tmp_path / "home", options) as stack:
        assert stack.worker is not None
        said = stack.worker.log_path.read_text()
        assert "deployment lobstack-process, build id b1, versioned" in said, said
        client = LobstackClient(stack.client)
        await client.add_approver("acme", "admin")  # only an account's approvers decide
        spec = AgentSpec(account_id="acme", name="helper", require_approval=True)
        agent_id = await client.create_agent(spec)
        await client.wait_for(agent_id, {AgentState.PENDING_APPROVAL}, timeout_s=60)
        await client.reject(agent_id, approver="admin", reason="not needed")
        assert (await client.result(agent_id)).state == AgentState.REJECTED
        described = await stack.client.workflow_service.describe_workflow_execution(
            DescribeWorkflowExecutionRequest(
                namespace=stack.client.namespace, execution=WorkflowExecution(workflow_id=workflow_id(agent_id))
            )
        )
    info = described.workflow_execution_info.versioning_info
    assert info.behavior == VersioningBehavior.VERSIONING_BEHAVIOR_PINNED
    assert (info.deployment_version.deployment_name, info.deployment_version.build_id) == ("lobstack-process", "b1")
