"""Worker Versioning on the Temporal dev server: a lifecycle stays on the version it started on while new ones start
on the version made current, and the settings that choose the version are checked before anything starts."""

from __future__ import annotations

import uuid

import pytest
from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.enums.v1 import EventType, VersioningBehavior
from temporalio.api.workflowservice.v1 import DescribeWorkflowExecutionRequest
from temporalio.client import Client
from temporalio.common import WorkerDeploymentVersion
from temporalio.worker import WorkerDeploymentConfig

from contracts.identifiers import workflow_id
from contracts.models import AgentState
from contracts.queues import cloud_queue
from tests.stack import Stack
from workers.versioning import set_current_version
from workers.worker import running_workers

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def task_versions(client: Client, agent_id: str) -> list[tuple[str, int]]:
    """(build id, behavior) of every workflow task the lifecycle's current run completed, in order. A versioned
    worker records its Worker Deployment Version, an unversioned one its build id alone."""
    history = await client.get_workflow_handle(workflow_id(agent_id)).fetch_history()
    completed = [
        event.workflow_task_completed_event_attributes
        for event in history.events
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED
    ]
    return [
        (task.deployment_version.build_id or task.worker_version.build_id, task.versioning_behavior)
        for task in completed
    ]


async def activity_builds(client: Client, agent_id: str) -> dict[str, set[str]]:
    """The build ids of the workers that ran the lifecycle's activities, by activity queue."""
    history = await client.get_workflow_handle(workflow_id(agent_id)).fetch_history()
    queues = {
        event.event_id: event.activity_task_scheduled_event_attributes.task_queue.name
        for event in history.events
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
    }
    builds: dict[str, set[str]] = {}
    for event in history.events:
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
            started = event.activity_task_started_event_attributes
            builds.setdefault(queues[started.scheduled_event_id], set()).add(started.worker_version.build_id)
    return builds


async def pinned_to(client: Client, agent_id: str) -> str:
    """The build id Temporal says the lifecycle runs on."""
    described = await client.workflow_service.describe_workflow_execution(
        DescribeWorkflowExecutionRequest(
            namespace=client.namespace,
            execution=WorkflowExecution(workflow_id=workflow_id(agent_id)),
        )
    )
    info = described.workflow_execution_info.versioning_info
    assert info.behavior == VersioningBehavior.VERSIONING_BEHAVIOR_PINNED
    return info.deployment_version.build_id


async def test_a_lifecycle_started_on_version_a_finishes_on_a_while_new_ones_start_on_b(stack: Stack) -> None:
    deployment = f"lobstack-{uuid.uuid4().hex[:8]}"
    version_a = WorkerDeploymentVersion(deployment, "build-a")
    version_b = WorkerDeploymentVersion(deployment, "build-b")
    on_a = WorkerDeploymentConfig(version=version_a, use_worker_versioning=True)
    on_b = WorkerDeploymentConfig(version=version_b, use_worker_versioning=True)
    temporal = stack.temporal

    async with running_workers(temporal, stack.services, task_queue=stack.task_queue, deployment=on_a):
        await set_current_version(temporal, version_a)
        first = await stack.client.create_agent(stack.spec(require_approval=True))
        await stack.client.wait_for(first, {AgentState.PENDING_APPROVAL}, timeout_s=30)
        assert await pinned_to(temporal, first) == "build-a"

        async with running_workers(temporal, stack.services, task_queue=stack.task_queue, deployment=on_b):
            await set_current_version(temporal, version_b)
            second = await stack.client.create_agent(stack.spec(require_approval=True))
            await stack.client.wait_for(second, {AgentState.PENDING_APPROVAL}, timeout_s=30)
            assert await pinned_to(temporal, second) == "build-b"

            # The approval and the destroy reach the first lifecycle after B became current: A still serves them.
            await stack.client.approve(first, approver="alice", reason="upgrade test")
            await stack.client.wait_for(first, {AgentState.RUNNING}, timeout_s=60)
            await stack.client.destroy(first, requested_by="bob", reason="done")
            assert (await stack.client.result(first)).state == AgentState.DESTROYED

            await stack.client.reject(second, approver="alice", reason="not needed")
            assert (await stack.client.result(second)).state == AgentState.REJECTED

    pinned = VersioningBehavior.VERSIONING_BEHAVIOR_PINNED
    first_tasks = await task_versions(temporal, first)
    assert len(first_tasks) > 3 and set(first_tasks) == {("build-a", pinned)}, first_tasks
    # Its activities too, on the workflow queue and on the provider's queue.
    assert await activity_builds(temporal, first) == {
        stack.task_queue: {"build-a"},
        cloud_queue("local", stack.task_queue): {"build-a"},
    }
    second_tasks = await task_versions(temporal, second)
    assert second_tasks and set(second_tasks) == {("build-b", pinned)}, second_tasks
    assert stack.vms_of(first) == 0 and stack.vms_of(second) == 0


async def test_a_worker_with_a_build_id_but_no_versioning_records_it_and_runs_every_task(stack: Stack) -> None:
    # The workflows declare pinned or auto-upgrade; the server refuses that from a worker that is not versioned, so
    # such a worker must leave it out (workers/versioning.py UnversionedRunner) and still say its build id.
    unversioned = WorkerDeploymentConfig(
        version=WorkerDeploymentVersion(f"lobstack-{uuid.uuid4().hex[:8]}", "build-x"), use_worker_versioning=False
    )
    async with running_workers(stack.temporal, stack.services, task_queue=stack.task_queue, deployment=unversioned):
        agent_id = await stack.client.create_agent(stack.spec(require_approval=True))
        await stack.client.wait_for(agent_id, {AgentState.PENDING_APPROVAL}, timeout_s=30)
        await stack.client.reject(agent_id, approver="alice", reason="not needed")
        assert (await stack.client.result(agent_id)).state == AgentState.REJECTED
    tasks = await task_versions(stack.temporal, agent_id)
    assert tasks and set(tasks) == {("build-x", VersioningBehavior.VERSIONING_BEHAVIOR_UNSPECIFIED)}, tasks
