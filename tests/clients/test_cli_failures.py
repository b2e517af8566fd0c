"""How each `lobstack` command fails against a live stack (issue 11, item 5): one line on stderr that says what failed
and what to do, the documented exit status (1 failed or refused, 2 bad input, 3 unavailable or not done in time), and
never a traceback, a worker's stack trace or a path of the worker.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import pytest
from temporalio.client import WorkflowFailureError
from temporalio.exceptions import FailureError
from temporalio.testing import WorkflowEnvironment

import devstack
from contracts.identifiers import approval_id as approval_workflow_id
from contracts.identifiers import workflow_id
from contracts.models import AgentState, ToolApprovalInput
from tests.clients.cli_run import Done, arun, assert_failed, assert_ok
from tests.stack import Stack, eventually
from workflows.tool_approval import ToolApprovalWorkflow

pytestmark = pytest.mark.asyncio(loop_scope="session")


def cli_env(stack: Stack, **extra: str) -> dict[str, str]:
    return {
        "TEMPORAL_ADDRESS": stack.temporal.service_client.config.target_host,
        "LOBSTACK_TASK_QUEUE": stack.task_queue,
        **extra,
    }


def data_env(stack: Stack, openbao: devstack.OpenBaoDev, **extra: str) -> dict[str, str]:
    return cli_env(
        stack,
        VAULT_ADDR=openbao.addr,
        VAULT_TOKEN=stack.vault.settings.token,  # the orchestrator's policy, as a deployment runs it
        DATABASE_URL=stack.registry.engine.url.render_as_string(hide_password=False),
        **extra,
    )


async def lobstack(stack: Stack, *args: str, **env: str) -> Done:
    return await arun(*args, env=cli_env(stack, **env))


async def test_commands_on_unknown_and_ended_agents(stack: Stack) -> None:
    unknown = f"nobody-{uuid.uuid4().hex[:8]}"
    async with stack.workers():
        for command in (
            ["agent", "status", unknown],
            ["agent", "approve", unknown, "--approver", "alice"],
            ["agent", "reject", unknown, "--approver", "alice"],
            ["agent", "skills", unknown, "--skill", "web.search"],
            ["agent", "destroy", unknown],
        ):
            assert_failed(await lobstack(stack, *command), 1, f"no agent {unknown!r}", "lobstack agent list")

        ended = await stack.client.create_agent(stack.spec(require_approval=True))
        await stack.client.wait_for(ended, {AgentState.PENDING_APPROVAL}, timeout_s=30)
        await stack.client.reject(ended, approver="carol", reason="not needed")
        assert (await stack.client.result(ended)).state == AgentState.REJECTED
        for command in (
            ["agent", "approve", ended, "--approver", "alice"],
            ["agent", "reject", ended, "--approver", "alice"],
            ["agent", "skills", ended, "--skill", "web.search"],
            ["agent", "destroy", ended, "--wait"],
        ):
            done = await lobstack(stack, *command)
            assert_failed(done, 1, f"agent {ended!r} has already ended", f"lobstack agent status {ended}")
        assert "rejected" in (await lobstack(stack, "agent", "status", ended)).out

        create = ["agent", "create", "--account", "acme", "--name", "helper", "--agent-id", ended]
        assert_failed(await lobstack(stack, *create), 1, f"agent_id: {ended!r} is already taken")

        gated = await stack.client.create_agent(stack.spec(require_approval=True, approvers=["alice"]))
        await stack.client.wait_for(gated, {AgentState.PENDING_APPROVAL}, timeout_s=30)
        done = await lobstack(stack, "agent", "approve", gated, "--approver", "mallory")
        assert_failed(done, 1, f"decision on {gated} refused:", "not an allowed approver")
        await stack.client.destroy(gated, requested_by="test")
        await stack.client.result(gated)


async def test_approval_commands_failure_paths(stack: Stack) -> None:
    agent_id = f"t-{uuid.uuid4().hex[:12]}"
    request = ToolApprovalInput(
        agent_id=agent_id, account_id="acme", request_id="r1", tool="email.send", approvers=["alice"]
    )
    approval_id = approval_workflow_id(agent_id, "r1")
    async with stack.workers():
        unknown = f"approval-{agent_id}-nosuch"
        for verb in ("approve", "reject"):
            done = await lobstack(stack, "approvals", verb, unknown, "--approver", "alice")
            assert_failed(done, 1, f"approval_id: no approval {unknown!r}", "lobstack approvals list")
        await stack.temporal.start_workflow(
            ToolApprovalWorkflow.run, request, id=approval_id, task_queue=stack.task_queue
        )
        done = await lobstack(stack, "approvals", "approve", approval_id, "--approver", "mallory")
        assert_failed(done, 1, f"decision on {approval_id} refused:", "not an allowed approver")
        assert_ok(await lobstack(stack, "approvals", "approve", approval_id, "--approver", "alice"))
        done = await lobstack(stack, "approvals", "reject", approval_id, "--approver", "alice")
        assert_failed(done, 1, f"approval {approval_id!r} is already closed", "lobstack approvals list --all")


async def test_wait_timeouts_and_failed_lifecycles(stack: Stack, never_healthy_argv: list[str]) -> None:
    slow, doomed = f"slow-{uuid.uuid4().hex[:8]}", f"doomed-{uuid.uuid4().hex[:8]}"
    create = ["agent", "create", "--account", "acme", "--name", "helper", "--wait"]
    # The slow agent's health wait outlives its destroyed lifecycle (it ends at its own deadline): leaving the workers
    # cancels it after a second instead of waiting the default 10 s for it.
    async with stack.workers(stack.local_with(never_healthy_argv), graceful_shutdown=timedelta(seconds=1)):
        done = await lobstack(stack, *create, "--agent-id", slow, "--health-timeout", "120", "--wait-timeout", "2")
        assert_failed(done, 3, f"agent {slow} still", "after 2s", f"lobstack agent status {slow}")
        assert done.out.strip() == slow, "the agent was created; its id is printed first"
        await stack.client.destroy(slow, requested_by="test")
        await stack.client.result(slow)

        done = await lobstack(stack, *create, "--agent-id", doomed, "--health-timeout", "1")
        assert_failed(done, 1, f"agent {doomed} ended failed:")
        with pytest.raises(WorkflowFailureError) as failure:
            await stack.client.result(doomed)
    # Our workers write no stack trace (workers/converter.py); the CLI's line leaves out one that a worker of another
    # version or SDK wrote, and shows only the messages.
    from clients.cli_common import explain

    cause = failure.value.cause
    assert isinstance(cause, FailureError) and cause.failure is not None and cause.failure.stack_trace == ""
    cause.failure.stack_trace = '  File "/srv/worker/activities/health.py", line 9, in wait_healthy\n    raise'
    status, message = explain(failure.value)
    assert status == 1 and message.startswith("the workflow failed: ")
    assert "\n" not in message and "/srv/worker" not in message
    assert ".py" not in message
    assert stack.vms_of(slow) == stack.vms_of(doomed) == 0


async def test_no_worker_for_the_task_queue(stack: Stack) -> None:
    # Once these workers are gone, the workflow's next task goes to any worker after 1 s, not after the default 10 s.
    async with stack.workers(sticky_timeout=timedelta(seconds=1)):
        agent_id = await stack.client.create_agent(stack.spec(require_approval=True))
        await stack.client.wait_for(agent_id, {AgentState.PENDING_APPROVAL}, timeout_s=30)
        handle = stack.temporal.get_workflow_handle(workflow_id(agent_id))

        async def idle() -> bool | None:
            # A workflow task these workers took and dropped as they stopped would hold the next one for its 10 s.
            raw = (await handle.describe()).raw_description
            return None if raw.pending_activities or raw.HasField("pending_workflow_task") else True

        await eventually(idle, what="the lifecycle idle, waiting for approval")
    # The workers are gone: a signal is still accepted by Temporal, but nothing carries it out or answers a query.
    destroy, status = await asyncio.gather(
        lobstack(stack, "agent", "destroy", agent_id, "--wait", "--wait-timeout", "2"),
        lobstack(stack, "agent", "status", agent_id, "--timeout", "2"),
    )
    assert_failed(destroy, 3, f"agent {agent_id!r} is not destroyed yet after 2s", "the destroy goes on")
    assert destroy.out.strip() == f"destroy requested for {agent_id}"
    assert_failed(status, 3)
    # Which one depends on the server's timing: "no poller seen recently", or the query's own time limit.
    assert any(said in status.err for said in ("no worker is serving task queue", "did not answer in time")), status
    assert repr(stack.task_queue) in status.err
    async with stack.workers():
        assert (await stack.client.result(agent_id)).state.terminal


async def test_a_namespace_that_does_not_exist(stack: Stack) -> None:
    for command in (["agent", "status", "helper-1"], ["agent", "list"], ["agent", "destroy", "helper-1"]):
        done = await lobstack(stack, "--namespace", "no-such-namespace", *command)
        assert_failed(done, 1, "Namespace no-such-namespace is not found", "Check --namespace or TEMPORAL_NAMESPACE")


async def test_agent_data_failure_paths(
    temporal_dev: WorkflowEnvironment, stack: Stack, openbao: devstack.OpenBaoDev
) -> None:
    env = data_env(stack, openbao)

    async def data(*args: str, stdin: bytes = b"value", **extra: str) -> Done:
        return await arun("agent-data", *args, env={**env, **extra}, stdin=stdin)

    async with stack.workers():
        agent_id = await stack.client.create_agent(stack.spec(require_approval=True))
        await stack.client.wait_for(agent_id, {AgentState.PENDING_APPROVAL}, timeout_s=30)
        # Before approval the agent has no Transit key: this was a 51-line traceback ending in SecretsRejected.
        done = await data("put", agent_id, "smtp.password", "--account", "acme")
        assert_failed(done, 1, f"agent {agent_id!r} is pending_approval", f"lobstack agent approve {agent_id}")
        assert_failed(
            await data("put", agent_id, "smtp.password", "--account", "globex"),
            1,
            f"no agent {agent_id!r} under account 'globex'",
        )

        await stack.client.approve(agent_id, approver="alice")
        await stack.client.wait_for(agent_id, {AgentState.RUNNING}, timeout_s=60)
        assert_ok(await data("put", agent_id, "smtp.password", "--account", "acme"))
        refused = await data("put", agent_id, "smtp.password", "--account", "acme", VAULT_TOKEN="not-a-token")
        assert_failed(refused, 1, "Vault refused: vault read transit/keys/", "check VAULT_TOKEN's policy")
        refused = await data("get", agent_id, "smtp.password", VAULT_TOKEN="not-a-token")
        assert_failed(refused, 1, "Vault refused: vault write transit/decrypt/")
        assert refused.out == ""
        missing = await data("get", agent_id, "api.key")
        assert_failed(missing, 1, f"agent {agent_id!r} has no data named 'api.key'")

        await stack.client.destroy(agent_id, requested_by="test")
        assert (await stack.client.result(agent_id)).state == AgentState.DESTROYED
    done = await data("put", agent_id, "smtp.password", "--account", "acme")
    assert_failed(done, 1, f"agent {agent_id!r} is destroyed", "its data is deleted with it")
