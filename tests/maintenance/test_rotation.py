"""KeyRotation end to end: real OpenBao Transit, a real registry, a real lifecycle on the dev server."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from temporalio.testing import ActivityEnvironment

from activities.errors import SecretsRejected
from activities.maintenance import AgentDataActivities, RotationActivities
from activities.secrets.agent_data import AgentDataMissing, AgentDataStore
from contracts.maintenance_models import RotationBatch, RotationInput, RotationResult
from contracts.models import AgentRef, AgentState
from contracts.spec import SpecError
from tests.maintenance.helpers import registered, run_now
from tests.stack import Stack, eventually
from workflows.key_rotation import KeyRotationWorkflow

pytestmark = pytest.mark.asyncio(loop_scope="session")

VALUES = {"smtp-password": b"hunter2-" + uuid.uuid4().hex.encode(), "config.json": b'{"tone": "formal"}'}


async def test_rotation_rewraps_then_refuses_old_ciphertexts(stack: Stack) -> None:
    data = AgentDataStore(stack.vault, stack.registry)
    async with stack.workers():
        agent_id = await stack.client.create_agent(stack.spec())
        await stack.client.wait_for(agent_id, {AgentState.RUNNING}, timeout_s=60)
        for name, value in VALUES.items():
            assert data.put(agent_id, "acme", name, value) == 1
        with pytest.raises(SpecError, match="agent_id"):
            data.put(agent_id, "other-account", "x", b"y")
        before = {row.name: row.ciphertext for row in stack.registry.agent_data_of(agent_id)}
        assert all(v.startswith("vault:v1:") for v in before.values())
        assert not any(value.decode() in c for value in VALUES.values() for c in before.values())

        result: RotationResult = await run_now(stack, KeyRotationWorkflow.run, RotationInput(batch_size=2), "rotate")

        assert result.agents >= 1 and result.keys_rotated >= 1 and result.rewrapped >= len(VALUES)
        assert agent_id not in result.held_back
        key = stack.vault.transit_key(agent_id)
        assert key is not None and key.latest_version == 2 and key.min_decryption_version == 2
        rows = stack.registry.agent_data_of(agent_id)
        assert {r.key_version for r in rows} == {2} and all(r.ciphertext.startswith("vault:v2:") for r in rows)
        # The old ciphertexts are refused by Vault; every item still decrypts.
        for old in before.values():
            with pytest.raises(SecretsRejected, match="refused"):
                stack.vault.decrypt(agent_id, old)
        for name, value in VALUES.items():
            assert data.get(agent_id, name) == value
        # A put after the rotation uses the new version.
        assert data.put(agent_id, "acme", "late", b"after") == 2

        [event] = [e for e in stack.registry.events(agent_id=agent_id) if e.action == "keys.rotated"]
        assert event.actor == "key-rotation" and event.state == AgentState.RUNNING
        assert event.details["rewrapped"] == str(len(VALUES)) and event.details["to_version"] == "2"
        record = stack.registry.get(agent_id)
        assert record is not None and record.state == AgentState.RUNNING, "the audit leaves the agent's row alone"

        await stack.client.destroy(agent_id)
        await stack.client.result(agent_id)


async def test_a_retried_batch_rotates_and_audits_once_per_run(stack: Stack) -> None:
    agent_id = f"t-{uuid.uuid4().hex[:16]}"
    stack.vault.mint(agent_id, account_id="acme")
    try:
        stack.registry.record(registered(agent_id))
        data = AgentDataStore(stack.vault, stack.registry)
        data.put(agent_id, "acme", "token-file", b"s3cr3t")
        acts = RotationActivities(stack.vault, stack.registry)
        key = stack.vault.transit_key(agent_id)
        assert key is not None
        # Started in the same second the key was made: still rotated (only later versions count as this run's).
        batch = RotationBatch(run_id=str(uuid.uuid4()), started_at=datetime.now(UTC), agent_ids=[agent_id])
        env = ActivityEnvironment()
        first = env.run(acts.rotate_keys, batch)
        again = env.run(acts.rotate_keys, batch)  # a retry after a lost completion
        assert [a.to_version for a in first.agents] == [2] and first.agents[0].rewrapped == 1
        assert again == first, "a finished agent reports what its audit event recorded"
        # An attempt that died after rotating but before its audit: the version made since the start is reused.
        crashed = RotationBatch(str(uuid.uuid4()), batch.started_at - timedelta(seconds=1), [agent_id])
        assert env.run(acts.rotate_keys, crashed).agents[0].to_version == 2
        key = stack.vault.transit_key(agent_id)
        assert key is not None and key.latest_version == 2
        assert [e.action for e in stack.registry.events(agent_id=agent_id)].count("keys.rotated") == 2  # two runs
        assert data.get(agent_id, "token-file") == b"s3cr3t"

        # Destroy's data cleanup (the activity the lifecycle calls) removes the rows; the key is gone with Vault's.
        deleted = env.run(AgentDataActivities(stack.registry).delete_agent_data, AgentRef(agent_id, "acme"))
        assert deleted.items == 1 and stack.registry.agent_data_of(agent_id) == []
        with pytest.raises(AgentDataMissing):
            data.get(agent_id, "token-file")
    finally:
        stack.vault.destroy(agent_id)


async def test_data_for_an_agent_without_a_key_is_refused_and_creates_no_key(stack: Stack) -> None:
    """Even with a token that could create keys (the operator's), a put before the agent's secrets are minted must not
    leave a Transit key that a rejected agent's lifecycle would never delete."""
    from activities.secrets import AgentVault, VaultSettings

    privileged = AgentVault(VaultSettings(addr=stack.vault.settings.addr, token=stack.operator_token))
    data = AgentDataStore(privileged, stack.registry)
    async with stack.workers():
        agent_id = await stack.client.create_agent(stack.spec(require_approval=True))
        await stack.client.wait_for(agent_id, {AgentState.PENDING_APPROVAL}, timeout_s=20)

        async def registered_row() -> object | None:
            return stack.registry.get(agent_id)

        await eventually(registered_row, timeout_s=20, what="the pending agent's registry row")
        with pytest.raises(SpecError, match="no key yet"):
            data.put(agent_id, "acme", "early", b"too soon")
        assert stack.vault.transit_key(agent_id) is None
        await stack.client.reject(agent_id, approver="alice", reason="test over")
        await stack.client.result(agent_id)
    assert stack.vault.residue(agent_id).total == 0
