"""Every `lobstack` command against a deployment with payload encryption on (issue 11, item 4).

The worker's client takes its converter from `connection.codec.data_converter_from_env`, as the CLI does, so everything
Temporal stores for this test is encrypted. The CLI runs as a separate process with the keys in its environment, once
through LOBSTACK_CODEC_KEYS and once through LOBSTACK_CODEC_KEYS_FILE; every command must exit 0 without a traceback.
Without the keys, or with other keys, a command says so in one line (exit 1).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from temporalio.client import Client
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

import devstack
from connection.codec import ENCODING, KEYS_ENV, CodecKey, data_converter_from_env, encode_keyring_spec
from contracts.identifiers import approval_id as approval_workflow_id
from contracts.identifiers import workflow_id
from contracts.models import AgentState, ApprovalStatus, ToolApprovalInput
from tests.clients.cli_run import Done, arun, assert_failed, assert_ok
from tests.stack import Stack, make_stack, reap
from workers.converter import with_converter
from workers.schedules import SCHEDULE_IDS
from workflows.tool_approval import ToolApprovalWorkflow

pytestmark = pytest.mark.asyncio(loop_scope="session")


@pytest.fixture
def codec_key() -> CodecKey:
    return CodecKey.generate(f"cli-{uuid.uuid4().hex[:6]}")


@pytest.fixture
def encrypted_stack(
    temporal_dev: WorkflowEnvironment, openbao: devstack.OpenBaoDev, codec_key: CodecKey, tmp_path: Path
) -> Iterator[Stack]:
    converter = data_converter_from_env({KEYS_ENV: encode_keyring_spec([codec_key])})
    encrypted = with_converter(temporal_dev.client, converter)
    made = make_stack(encrypted, openbao, f"sqlite:///{tmp_path / 'registry.db'}", tmp_path)
    yield made
    reap(made)


@contextlib.asynccontextmanager
async def schedules_removed(client: Client, queue: str) -> AsyncIterator[None]:
    """`schedules install` uses fixed ids on the session's server: leave none behind, nor a run on this queue."""
    try:
        yield
    finally:
        for schedule_id in SCHEDULE_IDS:
            with contextlib.suppress(RPCError):
                await client.get_schedule_handle(schedule_id).delete()
        async for execution in client.list_workflows(f"TaskQueue='{queue}' AND ExecutionStatus='Running'"):
            if not execution.id.startswith("agent-"):
                with contextlib.suppress(RPCError):
                    await client.get_workflow_handle(execution.id).terminate(reason="test cleanup")


def cli_env(stack: Stack, openbao: devstack.OpenBaoDev, extra: dict[str, str]) -> dict[str, str]:
    return {
        "TEMPORAL_ADDRESS": stack.temporal.service_client.config.target_host,
        "LOBSTACK_TASK_QUEUE": stack.task_queue,
        "VAULT_ADDR": openbao.addr,
        "VAULT_TOKEN": stack.vault.settings.token,  # the orchestrator's policy, as a deployment runs it
        "DATABASE_URL": stack.registry.engine.url.render_as_string(hide_password=False),
        **extra,
    }


async def start_approval(stack: Stack, agent_id: str) -> str:
    request = ToolApprovalInput(
        agent_id=agent_id,
        account_id="acme",
        request_id=uuid.uuid4().hex[:12],
        tool="email.send",
        arguments={"to": "ceo@example.com"},
        requested_by=f"agent-{agent_id}",
        approvers=["alice"],
    )
    approval_id = approval_workflow_id(agent_id, request.request_id)
    await stack.temporal.start_workflow(ToolApprovalWorkflow.run, request, id=approval_id, task_queue=stack.task_queue)
    return approval_id


async def raw_payload_encodings(client: Client, wf_id: str) -> set[bytes]:
    """The encodings of the start input as Temporal stores it (read without any codec)."""
    history = await client.get_workflow_handle(wf_id).fetch_history()
    started = history.events[0].workflow_execution_started_event_attributes
    return {p.metadata.get("encoding", b"") for p in started.input.payloads}


@pytest.mark.parametrize("source", ["keys", "keys_file"])
async def test_every_command_runs_against_an_encrypted_worker(
    temporal_dev: WorkflowEnvironment,
    openbao: devstack.OpenBaoDev,
    encrypted_stack: Stack,
    codec_key: CodecKey,
    tmp_path: Path,
    source: str,
) -> None:
    stack = encrypted_stack
    spec = encode_keyring_spec([codec_key])
    if source == "keys":
        keys = {"LOBSTACK_CODEC_KEYS": spec}
    else:
        keys_file = tmp_path / "codec-keys"
        keys_file.touch(mode=0o600)
        keys_file.write_text(spec)
        keys = {"LOBSTACK_CODEC_KEYS_FILE": str(keys_file)}
    env = cli_env(stack, openbao, keys)

    async def ok(*args: str, stdin: bytes = b"") -> Done:
        done = await arun(*args, env=env, stdin=stdin)
        assert_ok(done)
        return done

    kept, refused = f"enc-{uuid.uuid4().hex[:10]}", f"enc-{uuid.uuid4().hex[:10]}"
    create = ["agent", "create", "--account", "acme", "--name", "encrypted", "--skill", "web.search"]
    async with stack.workers(), schedules_removed(temporal_dev.client, stack.task_queue):
        done = await ok(*create, "--agent-id", kept, "--require-approval", "--wait")
        assert done.out.splitlines()[0] == kept and "pending_approval" in done.out
        await ok(*create, "--agent-id", refused, "--require-approval")
        # What the CLI sent was encrypted too: Temporal holds no plain start input of it.
        assert await raw_payload_encodings(temporal_dev.client, workflow_id(kept)) == {ENCODING}

        # Commands that do not depend on each other run at once (each is a process of its own; they only read).
        status, as_json, agents, running = await asyncio.gather(
            ok("agent", "status", kept),
            ok("agent", "status", kept, "--json"),
            ok("agent", "list"),
            ok("agent", "list", "--running"),
        )
        assert "pending_approval" in status.out
        assert json.loads(as_json.out)["agent_id"] == kept
        assert kept in agents.out
        assert refused in running.out
        _, approved_agent = await asyncio.gather(
            ok("agent", "reject", refused, "--approver", "alice", "--reason", "not needed"),
            ok("agent", "approve", kept, "--approver", "alice"),
        )
        assert f"approved {kept} as alice" in approved_agent.out
        await stack.client.wait_for(kept, {AgentState.RUNNING}, timeout_s=60)
        await ok("agent", "skills", kept, "--skill", "web.search", "--skill", "email.send", "--requested-by", "alice")

        approve_id, reject_id = await start_approval(stack, kept), await start_approval(stack, kept)
        listed = (await ok("approvals", "list")).out
        assert approve_id in listed and reject_id in listed
        approved, rejected = await asyncio.gather(
            ok("approvals", "approve", approve_id, "--approver", "alice", "--reason", "expected"),
            ok("approvals", "reject", reject_id, "--approver", "alice"),
        )
        assert f"{approve_id}: approved by alice" in approved.out
        assert "rejected by alice" in rejected.out
        assert approve_id in (await ok("approvals", "list", "--all")).out

        value = f"customer credential {uuid.uuid4().hex}"
        await ok("agent-data", "put", kept, "smtp.password", "--account", "acme", stdin=value.encode())
        got, names = await asyncio.gather(
            ok("agent-data", "get", kept, "smtp.password", "--account", "acme"), ok("agent-data", "list", kept)
        )
        assert got.out == value
        assert names.out == "smtp.password\n"

        rotation, dry_run = await asyncio.gather(ok("keys", "rotate", "--batch-size", "10"), ok("sweep", "--dry-run"))
        rotated = json.loads(rotation.out)
        assert rotated["agents"] >= 1 and rotated["keys_rotated"] >= 1
        assert json.loads(dry_run.out)["dry_run"] is True
        assert json.loads((await ok("sweep")).out)["dry_run"] is False
        every = ["--rotation-every-days", "90", "--sweep-every-minutes", "60", "--health-every-seconds", "3600"]
        assert (await ok("schedules", "install", *every)).out.count(": created") == 3
        # The second install reads the (encrypted) schedules back to update them in place.
        assert (await ok("schedules", "install", *every)).out.count(": updated") == 3

        destroyed = await ok("agent", "destroy", kept, "--requested-by", "alice", "--wait")
        assert f"{kept}: destroyed" in destroyed.out
        ended, ended_refused = await asyncio.gather(ok("agent", "status", kept), ok("agent", "status", refused))
        assert "destroyed" in ended.out
        assert "rejected" in ended_refused.out

    database = ["--database-url", env["DATABASE_URL"]]
    verified, export = await asyncio.gather(
        ok("audit", "verify", *database), ok("audit", "export", *database, "--account", "acme")
    )
    assert "audit chain ok" in verified.out
    exported = [json.loads(line) for line in export.out.splitlines()]
    assert {kept, refused} <= {row["agent_id"] for row in exported}
    assert stack.vms_of(kept) == 0 and stack.vault.residue(kept).total == 0


async def test_without_the_keys_or_with_other_keys_a_command_says_so_in_one_line(
    openbao: devstack.OpenBaoDev, encrypted_stack: Stack
) -> None:
    stack = encrypted_stack
    no_keys = cli_env(stack, openbao, {})
    other_keys = cli_env(stack, openbao, {"LOBSTACK_CODEC_KEYS": encode_keyring_spec([CodecKey.generate("other")])})
    async with stack.workers():
        agent_id = await stack.client.create_agent(stack.spec(require_approval=True))
        await stack.client.wait_for(agent_id, {AgentState.PENDING_APPROVAL}, timeout_s=30)
        approval_id = await start_approval(stack, agent_id)
        for command in (["agent", "status", agent_id], ["sweep", "--dry-run"], ["keys", "rotate"]):
            done = await arun(*command, env=no_keys)
            assert_failed(done, 1, "cannot read Temporal's answer: it is binary/encrypted and this CLI has no key")
            assert "LOBSTACK_CODEC_KEYS or LOBSTACK_CODEC_KEYS_FILE" in done.err
            done = await arun(*command, env=other_keys)
            assert_failed(done, 1, "cannot read Temporal's answer: payload encrypted with unknown key id")
        # A decision sent with another key cannot be read by the worker: refused, reported, and nothing decided.
        done = await arun("approvals", "approve", approval_id, "--approver", "alice", env=other_keys)
        assert_failed(done, 1, "cannot read Temporal's answer")
        status: ApprovalStatus = await stack.temporal.get_workflow_handle_for(
            ToolApprovalWorkflow.run, approval_id
        ).query(ToolApprovalWorkflow.status)
        assert status.state.value == "pending"
        await stack.client.destroy(agent_id, requested_by="test")
        assert (await stack.client.result(agent_id)).state.terminal
        await stack.client.decide_approval(approval_id, approver="alice", approved=False, reason="cleanup")
