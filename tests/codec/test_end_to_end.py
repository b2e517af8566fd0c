"""Encrypted payloads end to end: a whole AgentLifecycle on the dev server through a codec-enabled client and workers.

Read without the key, Temporal's history shows no spec field and no secret; read with it, everything decodes. A plain
JSON `approve` signal, as the Web UI's signal dialog sends it, still reaches a codec-enabled worker.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from google.protobuf.message import Message
from temporalio.api.common.v1 import Payload
from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

import devstack
from tests.stack import Stack, make_stack, reap
from workers.codec import ENCODING, EncryptionCodec, Keyring, data_converter
from workflows import agent_lifecycle
from workflows.models import AgentState
from workflows.queues import workflow_id

pytestmark = pytest.mark.asyncio(loop_scope="session")


@pytest.fixture
def keyring() -> Keyring:
    return Keyring.generate("e2e")


@pytest.fixture
def codec_stack(
    temporal_dev: WorkflowEnvironment, openbao: devstack.OpenBaoDev, keyring: Keyring, tmp_path: Path
) -> Iterator[Stack]:
    # Same server connection, the workers' data converter: client and workers share the codec.
    encrypted = Client(**{**temporal_dev.client.config(), "data_converter": data_converter(keyring)})
    made = make_stack(encrypted, openbao, f"sqlite:///{tmp_path / 'registry.db'}", tmp_path)
    yield made
    reap(made)


def _patch_record(event: HistoryEvent) -> bool:
    if event.event_type == EventType.EVENT_TYPE_MARKER_RECORDED:
        return event.marker_recorded_event_attributes.marker_name == "core_patch"
    if event.event_type == EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES:
        fields = event.upsert_workflow_search_attributes_event_attributes.search_attributes.indexed_fields
        return set(fields) == {"TemporalChangeVersion"}
    return False


def payloads_in(message: Message) -> Iterator[Payload]:
    """Every Payload anywhere in a history (inputs, results, signals, markers, user metadata, failures)."""
    if isinstance(message, Payload):
        yield message
        return
    for field, value in message.ListFields():
        if field.message_type is None:
            continue
        if isinstance(value, Message):
            items = [value]
        elif field.message_type.GetOptions().map_entry:
            items = list(value.values())
        else:
            items = list(value)
        for item in items:
            if isinstance(item, Message):
                yield from payloads_in(item)


async def test_history_without_the_codec_reveals_nothing(
    temporal_dev: WorkflowEnvironment, codec_stack: Stack, keyring: Keyring
) -> None:
    stack = codec_stack
    marker = uuid.uuid4().hex[:8]
    spec = stack.spec(
        account_id=f"acct-{marker}", name=f"covert-{marker}", skills=["web.search", f"crm.lookup{marker}"]
    )
    async with stack.workers():
        agent_id = await stack.client.create_agent(spec)
        running = await stack.client.wait_for(agent_id, {AgentState.RUNNING}, timeout_s=60)
        minted = stack.secret_values(agent_id)
        assert minted and running.address, "the check needs a minted agent key and a VM address"
        await stack.client.destroy(agent_id, requested_by="bob", reason=f"done-{marker}")
        result = await stack.client.result(agent_id)
        final = await stack.client.status(agent_id)  # a closed workflow's query is answered by a worker
    assert result.state == AgentState.DESTROYED
    assert final.account_id == spec.account_id and final.state == AgentState.DESTROYED

    # The plain client: what Temporal's database, its operators and a UI without the codec server see.
    raw = await temporal_dev.client.get_workflow_handle(workflow_id(agent_id)).fetch_history()
    raw_bytes = b"".join(e.SerializeToString() for e in raw.events)
    raw_json = raw.to_json()
    sensitive = [spec.account_id, spec.name, f"crm.lookup{marker}", running.address, f"done-{marker}"]
    secrets_ = [*minted, stack.vault.settings.token]
    for value in [*sensitive, *secrets_]:
        assert value.encode() not in raw_bytes, f"{value[:12]}... is in the raw history"
        assert value not in raw_json
    found = [p for event in raw.events if not _patch_record(event) for p in payloads_in(event)]
    assert found, "the history holds payloads"
    plain = [p for p in found if p.metadata.get("encoding") != ENCODING]
    assert not plain, f"{len(plain)} payload(s) stored unencrypted: {[dict(p.metadata) for p in plain]}"
    # Left plain by Temporal itself: which code paths this run took (`workflow.patched` markers and the
    # TemporalChangeVersion search attribute). They hold our own patch ids and nothing else.
    patch_ids = {p.data for event in raw.events if _patch_record(event) for p in payloads_in(event)}
    known = {v for k, v in vars(agent_lifecycle).items() if k.startswith("PATCH_")}
    assert all(any(patch_id.encode() in data for patch_id in known) for data in patch_ids), patch_ids

    # With the key everything decodes, and the sensitive values are there: the check above was not vacuous.
    decoded = b"".join(p.SerializeToString() for p in await EncryptionCodec(keyring).decode(found))
    for value in sensitive:
        assert value.encode() in decoded


async def test_plain_json_approve_signal_from_the_ui_reaches_a_codec_worker(
    temporal_dev: WorkflowEnvironment, codec_stack: Stack
) -> None:
    stack = codec_stack
    async with stack.workers():
        agent_id = await stack.client.create_agent(stack.spec(require_approval=True))
        await stack.client.wait_for(agent_id, {AgentState.PENDING_APPROVAL}, timeout_s=30)
        # No codec: the default converter sends a dict as json/plain, exactly as the UI's "Send a Signal" dialog.
        plain = temporal_dev.client.get_workflow_handle(workflow_id(agent_id))
        await plain.signal("approve", {"approver": "ui-alice", "reason": "from the web ui"})
        running = await stack.client.wait_for(agent_id, {AgentState.RUNNING}, timeout_s=60)
        assert running.approved_by == "ui-alice"
        await stack.client.destroy(agent_id, requested_by="ui-alice")
        assert (await stack.client.result(agent_id)).state == AgentState.DESTROYED
    assert stack.vms_of(agent_id) == 0
