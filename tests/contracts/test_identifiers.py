"""The shared identifier rules: standard library only (they ship to the VM), and the same sets as the spec's rules."""

from __future__ import annotations

import ast
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from contracts import identifiers
from contracts.identifiers import approval_id, is_agent_id, is_request_id, is_tool, parse_approval_id
from contracts.spec import SpecError, validate_agent_id, validate_skills
from tests.hostile.strategies import hostile_text

agent_ids = st.from_regex(r"\A[a-z0-9](?:[a-z0-9-]{0,38}[a-z0-9])?\Z")
request_ids = st.from_regex(r"\A[a-z0-9]{1,40}\Z")
near_ids = st.one_of(hostile_text(max_size=50), st.from_regex(r"\A[a-z0-9-]{0,45}\Z"))
# Cheap checks; no deadline, so a loaded CI machine cannot fail them on timing.
unhurried = settings(deadline=None)


def test_the_module_imports_the_standard_library_only() -> None:
    tree = ast.parse(Path(identifiers.__file__).read_text())
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    outside = {name for name in imported if name.split(".")[0] not in sys.stdlib_module_names | {"__future__"}}
    assert not outside


def _spec_accepts(check: Callable[[object], object], value: object) -> bool:
    try:
        check(value)
    except SpecError:
        return False
    return True


@unhurried
@given(st.one_of(agent_ids, near_ids))
def test_agent_ids_are_the_specs(value: str) -> None:
    # contracts/spec.py still holds its own copy until it imports this module: the two must not drift.
    assert is_agent_id(value) == _spec_accepts(validate_agent_id, value)


@unhurried
@given(st.one_of(st.from_regex(r"\A[a-z][a-z0-9_.-]{0,63}\Z"), near_ids))
def test_tools_are_the_specs_skills(value: str) -> None:
    assert is_tool(value) == _spec_accepts(validate_skills, [value])


@unhurried
@given(agent_id=agent_ids, request_id=request_ids)
@example(agent_id="team-a", request_id="r1")
def test_an_approval_id_reads_back_as_its_agent_and_request(agent_id: str, request_id: str) -> None:
    assert parse_approval_id(approval_id(agent_id, request_id)) == (agent_id, request_id)


@unhurried
@given(st.one_of(near_ids.map("approval-".__add__), near_ids))
@example("approval-a-b-c")
@example("approval--r1")
@example("approval-a-")
def test_anything_parsed_as_an_approval_id_is_one(value: str) -> None:
    parsed = parse_approval_id(value)
    if parsed is not None:
        assert approval_id(*parsed) == value


@pytest.mark.parametrize(
    ("agent_id", "request_id", "field"),
    [("a", "x-r1", "request_id"), ("a", "", "request_id"), ("a-", "r1", "agent_id"), ("", "r1", "agent_id")],
)
def test_approval_id_refuses_ids_that_would_make_it_ambiguous(agent_id: str, request_id: str, field: str) -> None:
    with pytest.raises(ValueError, match=f"^{field}: must be "):
        approval_id(agent_id, request_id)
    assert not (is_agent_id(agent_id) and is_request_id(request_id))


def test_every_name_of_an_agent_derives_from_its_id_in_one_place() -> None:
    assert identifiers.workflow_id("team-a") == "agent-team-a"
    assert identifiers.vault_name("team-a") == "agent-team-a"
    assert identifiers.kv_prefix("team-a") == "agents/team-a/"
    assert identifiers.vm_name("team-a") == "lobstack-team-a"
    assert identifiers.approval_prefix("team-a") == "approval-team-a-"
    assert identifiers.approval_id("team-a", "r1").startswith(identifiers.approval_prefix("team-a"))


@pytest.mark.parametrize("agent_id", ["a", "team-a", "x" * 40])
def test_agent_of_reads_back_what_workflow_id_and_vault_name_wrote(agent_id: str) -> None:
    assert identifiers.agent_of(identifiers.workflow_id(agent_id)) == agent_id
    assert identifiers.agent_of(identifiers.vault_name(agent_id)) == agent_id


@pytest.mark.parametrize(
    "name", ["agent-", "agent-Team", "agent-a/b", "approval-a-r1", "lobstack-codec", "default", "agent--a", None, 7]
)
def test_agent_of_refuses_names_that_are_not_ours(name: object) -> None:
    assert identifiers.agent_of(name) is None
