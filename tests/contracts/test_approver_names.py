"""Placeholder and example names are never approvers: not as a decision's approver, not in a spec."""

from __future__ import annotations

import pytest

from contracts.models import Decision
from contracts.spec import AgentSpec, SpecError, is_placeholder_approver, validate_spec
from workflows.decisions import YOUR_NAME, malformed

PLACEHOLDERS = [
    "your-name", "Your_Name", "YOURNAME", "your.name", "name", "approver", "User", "username", "example", "someone",
    "changeme", "me", "ME", "jo@example.com", "jo@mail.example.org", "x@corp.example", "your-name@acme.io", "lobstack",
]  # fmt: skip
REAL = ["alice", "bob.smith", "carol@acme.io", "dave+ops@corp.com", "name-of-team", "me2", "example-ops", "usera"]


@pytest.mark.parametrize("name", PLACEHOLDERS)
def test_placeholders_are_refused_as_decision_approvers(name: str) -> None:
    assert is_placeholder_approver(name)
    why = malformed(Decision(approver=name), waiting=True, state="pending_approval")
    assert "placeholder" in why and "your own approver name" in why


@pytest.mark.parametrize("name", REAL)
def test_real_names_are_not_placeholders(name: str) -> None:
    assert not is_placeholder_approver(name)
    assert malformed(Decision(approver=name), waiting=True, state="pending_approval") == ""


def test_the_shown_body_sent_unchanged_says_to_put_your_own_name() -> None:
    why = malformed(Decision(approver=YOUR_NAME), waiting=True, state="pending_approval")
    assert why == f'approver: put your own approver name in place of "{YOUR_NAME}"'


@pytest.mark.parametrize("field_name", ["approvers", "escalation_approvers"])
@pytest.mark.parametrize("name", ["your-name", "approver", "jo@example.com"])
def test_a_spec_never_configures_a_placeholder_approver(field_name: str, name: str) -> None:
    spec = AgentSpec(account_id="acme", name="helper", agent_id="helper-1")
    setattr(spec, field_name, ["alice", name])
    with pytest.raises(SpecError) as refused:
        validate_spec(spec)
    assert refused.value.field == field_name and "never an approver" in str(refused.value)
    assert repr(name) in str(refused.value) and repr(name) not in refused.value.without_value
