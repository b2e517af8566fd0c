"""`LifecycleState` as continue-as-new carries it: through the JSON converter and the workflow's own decoding, whole.

No server needed: what crosses continue-as-new is the payload, and the workflow decodes it with `one_message`, which
refuses what it cannot read. A field of a type it does not support would fail every continued run, so it is checked
here. The end-to-end proof, on a real server, is tests/workflows/test_continue_as_new.py.
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from pathlib import Path

from temporalio.api.common.v1 import Payload
from temporalio.converter import DataConverter

from connection.codec import EncryptionCodec
from contracts.messages import one_message
from contracts.models import AgentState, DestroyRequest, LifecycleInput, LifecycleState, VMRef
from contracts.spec import AgentSpec
from tests.replay.codec_test_key import recording_converter

HISTORIES = Path(__file__).parents[1] / "replay" / "histories" / "0.1.0"


def _through_the_converter(value: object) -> object:
    """`value` as the next run's workflow code receives it: JSON, decoded without a type (handlers take `*args`)."""
    converter = DataConverter.default.payload_converter
    (decoded,) = converter.from_payloads(converter.to_payloads([value]))
    return decoded


def test_every_field_of_the_state_survives_continue_as_new() -> None:
    at = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
    state = LifecycleState(
        state=AgentState.DEGRADED,
        vm=VMRef("hetzner", "42", "lobstack-a1", "http://10.0.0.5:8080", location="fsn1", api_calls=3),
        health="unreachable",
        consecutive_failures=4,
        last_error="refused health_changed: healthy: must be true or false, not a string",
        approved_by="alice",
        waiting_for="Agent a1 is degraded.",
        refused_note=" Last message refused.",
        created_at=at,
        updated_at=at,
        running_at=at,
        api_calls=17,
        skills=["web.search"],
        approval_required=["email.*"],
        policy_version=2,
        replace_requested=True,
        destroy=DestroyRequest(requested_by="bob", reason="done"),
        tried=["hetzner", "digitalocean"],
        may_have_vm=["hetzner"],
    )
    sent = LifecycleInput(spec=AgentSpec(account_id="acme", name="helper", agent_id="a1"), state=state)
    received = one_message([_through_the_converter(sent)], LifecycleInput)
    assert received == sent and received.continued
    assert received.first_state() == state


def test_a_continue_as_new_input_written_before_the_state_existed_still_starts_the_running_agent() -> None:
    # The input of the last run of a lifecycle recorded by that version (tests/replay/test_replay.py replays it).
    history = json.loads((HISTORIES / "lifecycle_before_state_run3_skills_updated_destroyed.json").read_text())
    started = history["events"][0]["workflowExecutionStartedEventAttributes"]
    [raw] = started["input"]["payloads"]
    sealed = Payload(
        metadata={key: base64.b64decode(value) for key, value in raw["metadata"].items()},
        data=base64.b64decode(raw["data"]),
    )
    codec = recording_converter().payload_codec
    assert isinstance(codec, EncryptionCodec)
    old = json.loads(codec.decode_one(sealed).data)
    assert "state" not in old and old["running_vm"] is not None

    input = one_message([old], LifecycleInput)
    state = input.first_state()
    assert input.continued
    assert (state.state, state.health, state.vm, state.approved_by) == (
        AgentState.RUNNING,
        "healthy",
        input.running_vm,
        "alice",
    )
    assert (state.skills, state.policy_version, state.running_at) == (["web.search"], 2, input.running_at)
    assert state.tried == state.may_have_vm == ["local"]


def test_a_fresh_start_begins_from_the_spec() -> None:
    spec = AgentSpec(account_id="acme", name="helper", agent_id="a1", skills=["web.search"], require_approval=True)
    state = LifecycleInput(spec=spec).first_state()
    assert (state.state, state.health, state.vm, state.skills) == (
        AgentState.PENDING_APPROVAL,
        "unknown",
        None,
        ["web.search"],
    )
    assert state.approval_required == spec.approval_required and state.approval_required is not spec.approval_required
