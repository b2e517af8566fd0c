"""Every field of an AgentSpec, under hostile values: refused with a SpecError naming it and what is allowed, or
accepted, and then safe in every place it lands (VM names, Vault paths and policies, workflow ids, cloud labels/tags).
Design invariant 5."""

from __future__ import annotations

import re
from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from activities.cloud.base import ACCOUNT_LABEL, AGENT_LABEL, vm_name
from contracts.identifiers import AGENT_ID_RULE, workflow_id
from contracts.regions import CLOUD_PROVIDERS
from contracts.spec import (
    ACCOUNT_ID_RULE,
    APPROVER_RULE,
    MAX_SKILLS,
    NAME_RULE,
    PROVIDERS,
    REGIONS,
    SIZES,
    SKILL_RULE,
    TOOL_PATTERN_RULE,
    AgentSpec,
    SpecError,
    validate_agent_id,
    validate_skills,
    validate_spec,
    validate_tool_patterns,
)
from gateway.approvals import REQUEST_ID
from store.validation import _LIMITS
from tests.hostile.strategies import hostile_text, huge_text, not_a_string, with_field

VALID = AgentSpec(account_id="acme", name="helper", agent_id="helper-1a2b3c")
MESSAGE_MAX = 600  # a refusal quotes at most a short excerpt of the value: it may land in history, logs, a terminal

# The documented syntax of every place an id lands.
DNS_LABEL = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")
# Hetzner label values: at most 63 characters, alphanumeric at both ends, [a-z0-9A-Z._-] between (empty allowed).
HETZNER_LABEL_VALUE = re.compile(r"([a-zA-Z0-9]([a-zA-Z0-9._-]{0,61}[a-zA-Z0-9])?)?")
# DigitalOcean tags: letters, numbers, colons, dashes and underscores, at most 255 characters.
DO_TAG = re.compile(r"[a-zA-Z0-9_:-]{1,255}")
# Vultr tags are free text; we hold them to the same conservative set plus '=', which is our separator there.
VULTR_TAG = re.compile(r"[a-zA-Z0-9_:=.-]{1,255}")
# Vault: path segments, policy, role and Transit key names; lower case (Vault lower-cases policy names).
VAULT_NAME = re.compile(r"[a-z0-9][a-z0-9-]*")
TEMPORAL_ID_MAX = 1000


def _assert_refusal(err: SpecError, field: str, *allowed: str) -> None:
    assert err.field == field, err
    assert str(err).startswith(f"{field}: ")
    assert len(str(err)) <= MESSAGE_MAX, f"message of {len(str(err))} characters"
    text = err.message
    assert any(a in text for a in allowed) or "is required" in text or "must be" in text, text


def _check(spec: AgentSpec, field: str, *allowed: str) -> bool:
    """True when accepted; a refusal must be a SpecError naming `field` and what is allowed."""
    try:
        validate_spec(spec)
    except SpecError as err:
        _assert_refusal(err, field, *allowed)
        return False
    return True


def assert_id_safe_everywhere(value: str, limit: int) -> None:
    assert 1 <= len(value) <= limit and DNS_LABEL.fullmatch(value), value
    assert HETZNER_LABEL_VALUE.fullmatch(value)
    assert DO_TAG.fullmatch(f"{AGENT_LABEL}:{value}") and DO_TAG.fullmatch(f"{ACCOUNT_LABEL}:{value}")
    assert VULTR_TAG.fullmatch(f"{AGENT_LABEL}={value}")
    assert VAULT_NAME.fullmatch(f"agent-{value}")


@given(hostile_text())
def test_agent_id(value: str) -> None:
    if _check(replace(VALID, agent_id=value), "agent_id", AGENT_ID_RULE) and value:
        assert_id_safe_everywhere(value, 40)
        name = vm_name(value)
        assert DNS_LABEL.fullmatch(name) and len(name) <= 63 and HETZNER_LABEL_VALUE.fullmatch(name)
        assert len(workflow_id(value)) < TEMPORAL_ID_MAX
        # approval-<agent_id>-<request_id> splits back unambiguously at its last '-'.
        approval = f"approval-{value}-r1"
        assert approval.rsplit("-", 1) == [f"approval-{value}", "r1"] and REQUEST_ID.fullmatch("r1")


@given(hostile_text())
def test_account_id(value: str) -> None:
    if _check(replace(VALID, account_id=value), "account_id", ACCOUNT_ID_RULE):
        assert_id_safe_everywhere(value, _LIMITS["account_id"])


@given(hostile_text())
def test_name(value: str) -> None:
    if _check(replace(VALID, name=value), "name", NAME_RULE):
        assert DNS_LABEL.fullmatch(value) and len(value) <= _LIMITS["name"]
        assert HETZNER_LABEL_VALUE.fullmatch(value)


@pytest.mark.parametrize(("field", "allowed"), [("provider", PROVIDERS), ("region", REGIONS), ("size", SIZES)], ids=str)
@given(value=st.one_of(hostile_text(), not_a_string()))
def test_choices(field: str, allowed: tuple[str, ...], value: object) -> None:
    if _check(with_field(VALID, field, value), field, ", ".join(allowed)):
        assert value in allowed and len(str(value)) <= _LIMITS[field]


@given(field=st.sampled_from(["account_id", "name", "agent_id", "provider", "region", "size"]), value=huge_text())
def test_huge_values_are_refused_briefly(field: str, value: str) -> None:
    with pytest.raises(SpecError) as caught:
        validate_spec(with_field(VALID, field, value))
    _assert_refusal(caught.value, field, "characters", "choose one of")


@given(value=st.one_of(hostile_text(), not_a_string()))
def test_ids_of_the_wrong_type(value: object) -> None:
    for field in ("account_id", "name", "agent_id"):
        if not isinstance(value, str):
            with pytest.raises(SpecError) as caught:
                validate_spec(with_field(VALID, field, value))
            _assert_refusal(caught.value, field, "")
    try:
        validate_agent_id(value)
    except SpecError as err:
        _assert_refusal(err, "agent_id", AGENT_ID_RULE)
    else:
        assert isinstance(value, str)
        assert_id_safe_everywhere(value, 40)


LIST_FIELDS = {
    "skills": (r"[a-z][a-z0-9_.-]{0,63}", SKILL_RULE),
    "approval_required": (r"[a-z*][a-z0-9_.*?-]{0,63}", TOOL_PATTERN_RULE),
    "approvers": (r"[A-Za-z0-9][A-Za-z0-9._@+-]{0,63}", APPROVER_RULE),
    "escalation_approvers": (r"[A-Za-z0-9][A-Za-z0-9._@+-]{0,63}", APPROVER_RULE),
}


@pytest.mark.parametrize("field", list(LIST_FIELDS))
@given(values=st.one_of(st.lists(hostile_text(), max_size=5), st.lists(st.just("a"), min_size=60, max_size=70)))
def test_list_fields(field: str, values: list[str]) -> None:
    pattern, rule = LIST_FIELDS[field]
    if _check(with_field(VALID, field, values), field, rule, "listed once", f"at most {MAX_SKILLS}"):
        assert len(values) <= MAX_SKILLS and len(set(values)) == len(values)
        for value in values:
            assert re.fullmatch(pattern, value) and value.isascii() and value.isprintable()
            # Lands in audit reasons and actors (actor column: 128 characters).
            assert len(value) <= min(64, _LIMITS["actor"])


@pytest.mark.parametrize("field", list(LIST_FIELDS))
@given(
    value=st.one_of(
        not_a_string().filter(lambda v: not isinstance(v, list)),
        hostile_text(),
        st.lists(not_a_string().filter(lambda v: not isinstance(v, str)), min_size=1, max_size=3),
    )
)
def test_list_fields_of_the_wrong_type(field: str, value: object) -> None:
    with pytest.raises(SpecError) as caught:
        validate_spec(with_field(VALID, field, value))
    _assert_refusal(caught.value, field, LIST_FIELDS[field][1], "must be a list", "listed once")


@given(st.lists(hostile_text(), max_size=4) | not_a_string())
def test_skill_and_pattern_validators_alone(values: object) -> None:
    """The update_skills path: the same rules as the spec, checked without one."""
    for validator, field, rule in (
        (validate_skills, "skills", SKILL_RULE),
        (validate_tool_patterns, "approval_required", TOOL_PATTERN_RULE),
    ):
        try:
            accepted = validator(values)
        except SpecError as err:
            _assert_refusal(err, field, rule, "must be a list", "listed once")
        else:
            assert accepted == values and all(re.fullmatch(LIST_FIELDS[field][0], v) for v in accepted)


NUMBERS = {
    "approval_timeout_s": (60, 30 * 24 * 3600),
    "health_timeout_s": (1, 3600),
    "unhealthy_threshold": (1, 100),
}


@pytest.mark.parametrize("field", list(NUMBERS))
@given(value=st.one_of(st.integers(), not_a_string(), hostile_text(max_size=10), st.floats()))
def test_numbers(field: str, value: object) -> None:
    low, high = NUMBERS[field]
    if _check(with_field(VALID, field, value), field, f"{low} to {high}", f"from {low} to {high}"):
        assert type(value) is int and low <= value <= high


@pytest.mark.parametrize("field", ["strict_region", "require_approval", "replace_unhealthy"])
@given(value=st.one_of(not_a_string(), hostile_text(max_size=10)))
def test_flags(field: str, value: object) -> None:
    if _check(with_field(VALID, field, value), field, "true or false"):
        assert isinstance(value, bool)


@given(provider=st.sampled_from(PROVIDERS), region=st.sampled_from(REGIONS), strict=st.booleans())
def test_placement_either_fits_or_names_the_providers_that_do(provider: str, region: str, strict: bool) -> None:
    spec = replace(VALID, provider=provider, region=region, strict_region=strict)
    if not _check(spec, "region", *CLOUD_PROVIDERS, "none"):
        assert strict and provider != "local"
