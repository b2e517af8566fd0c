"""Hostile signal bodies on a live AgentLifecycle (real Temporal dev server, real OpenBao, SQLite registry).

Anyone holding a Temporal client (or the Web UI) can send any JSON as a signal body. Whatever they send must neither
crash the workflow task nor approve anything: the agent stays pending_approval (a bad skill update is ignored and
named in `last_error`), and a valid decision afterwards still works.

Each example ends by sending a sentinel, an update_skills the workflow must refuse for a unique unknown field name
(refusals name fields, never values): signals are handled in order, so once `last_error` names the sentinel every
hostile body before it has been handled, and a workflow task that had failed on one would never get there (no sleeps,
no guessing).
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from temporalio.client import WorkflowExecutionStatus, WorkflowFailureError, WorkflowHandle

from contracts.identifiers import workflow_id
from contracts.models import AgentState
from tests.hostile.live import settled as _settled
from tests.stack import Stack

pytestmark = pytest.mark.asyncio(loop_scope="session")

APPROVER = "alice"
_HUGE = "\u202e日本🦞" * 30_000  # ~270 KB of right-to-left override, CJK and astral characters
# What the audit trail can hold as an actor (128 characters, no NUL). Longer or NUL-bearing names are the known bug
# below (test_overlong_or_nul_names_in_a_signal_do_not_fail_the_lifecycle), kept out of the property until fixed.
_AUDITABLE = st.text(max_size=128).filter(lambda s: "\x00" not in s)

hostile_strings = st.one_of(
    st.sampled_from(["", "   ", " alice", "Alice", "ali\u202ece", "alice\n", "\u200balice", "a" * 128]),
    st.sampled_from(["$(reboot)", "`id`", "x\n- y: z", "!!python/object/apply:os.system ['id']", "'; DROP TABLE x"]),
    _AUDITABLE,
).filter(lambda s: s != APPROVER)
reasons = st.one_of(hostile_strings, st.just(_HUGE), st.just("why\x00"))
# Bodies of the wrong shape: the SDK cannot decode them into the signal's dataclass and drops the signal. (JSON null
# is different: it decodes to None; see test_a_null_body_does_not_wedge_the_lifecycle.) Lists are never empty: an
# empty list is a valid list of strings, so `approval_required: []` would be a legitimate update.
wrong_types = st.one_of(st.integers(), st.booleans(), st.lists(st.integers(), min_size=1, max_size=2))
decision_bodies = st.one_of(
    st.fixed_dictionaries({"approver": hostile_strings}, optional={"reason": reasons}),
    st.fixed_dictionaries({"approver": st.one_of(st.none(), wrong_types)}, optional={"reason": reasons}),
    st.fixed_dictionaries({}, optional={"reason": reasons, "approved": st.just(True)}),
    wrong_types,
    st.sampled_from(["alice", [APPROVER], {"approver": {"name": APPROVER}}, {"approver": APPROVER, "reason": 7}]),
)
skill_bodies = st.one_of(
    st.fixed_dictionaries(
        # At least one skill is invalid: an update of valid ones is legitimate, whoever sends it.
        {"skills": st.lists(hostile_strings, max_size=3).map(lambda skills: [*skills, "Bad Skill"])},
        optional={"requested_by": _AUDITABLE},
    ),
    st.fixed_dictionaries({"skills": st.just(["web.search"]), "approval_required": wrong_types}),
    st.fixed_dictionaries({"skills": st.one_of(st.none(), st.integers(), st.booleans())}),
    st.fixed_dictionaries(
        {"skills": st.just([]), "approval_required": st.lists(hostile_strings).map(lambda gated: [*gated, "$(x)"])}
    ),
)
# A destroy with a well-formed body is a legitimate request (it ends a pending agent as rejected): only bodies of the
# wrong shape belong here, and they must be dropped.
destroy_bodies = st.one_of(
    st.fixed_dictionaries({"requested_by": st.one_of(st.integers(), st.lists(st.text(max_size=2), min_size=1))}),
    st.sampled_from(["now", 7, [1, 2]]),
)
signals = st.one_of(
    st.tuples(st.sampled_from(["approve", "reject"]), decision_bodies),
    st.tuples(st.just("update_skills"), skill_bodies),
    st.tuples(st.just("destroy"), destroy_bodies),
)


async def _pending_agent(stack: Stack, approvers: list[str]) -> tuple[str, WorkflowHandle[Any, Any]]:
    agent_id = await stack.client.create_agent(stack.spec(require_approval=True, approvers=approvers))
    await stack.client.wait_for(agent_id, {AgentState.PENDING_APPROVAL}, timeout_s=20)
    return agent_id, stack.temporal.get_workflow_handle(workflow_id(agent_id))


async def _assert_untouched(stack: Stack, handle: WorkflowHandle[Any, Any], agent_id: str) -> None:
    status = await _settled(handle, stack, agent_id)
    assert status.state == AgentState.PENDING_APPROVAL, status
    assert status.approved_by == ""
    assert (await handle.describe()).status == WorkflowExecutionStatus.RUNNING
    assert stack.vms_of(agent_id) == 0


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(sent=st.lists(signals, min_size=1, max_size=4))
async def test_hostile_signals_leave_a_pending_agent_pending(stack: Stack, sent: list[tuple[str, object]]) -> None:
    async with stack.workers():
        agent_id, handle = await _pending_agent(stack, [APPROVER])
        for name, body in sent:
            await handle.signal(name, body)
        await _assert_untouched(stack, handle, agent_id)
        policy = await stack.client.policy(agent_id)
        assert policy.skills == ["web.search"] and policy.version == 0, policy
        # A valid decision still works afterwards.
        status = await stack.client.reject(agent_id, approver=APPROVER, reason="hostile test over")
        assert status.state == AgentState.REJECTED
        assert (await stack.client.result(agent_id)).state == AgentState.REJECTED


async def test_a_valid_approval_after_hostile_ones_provisions(stack: Stack) -> None:
    async with stack.workers():
        agent_id, handle = await _pending_agent(stack, [APPROVER])
        for approver in ("Alice", "ali\u202ece", "alice\n", "$(reboot)", "a" * 128, " "):
            await handle.signal("approve", {"approver": approver, "reason": "let me in"})
        await _assert_untouched(stack, handle, agent_id)
        approved = await stack.client.approve(agent_id, approver=APPROVER, reason="ok")
        assert approved.approved_by == APPROVER and approved.state != AgentState.PENDING_APPROVAL
        await stack.client.destroy(agent_id)
        assert (await stack.client.result(agent_id)).state == AgentState.DESTROYED
    refused = [e.actor for e in stack.registry.events(agent_id=agent_id) if e.action == "agent.approval_refused"]
    # Every refusal is audited; a blank name is recorded as "unknown".
    assert sorted(refused) == sorted(["Alice", "ali\u202ece", "alice\n", "$(reboot)", "a" * 128, "unknown"])


# --- bugs these properties found (null bodies, over-long or NUL names, malformed approvers, wrong-typed skills, a
# hostile destroy): fixed in workflows/, kept here as regressions ---------------------------------------------------


@pytest.mark.parametrize("name", ["approve", "update_skills"])
async def test_a_null_body_does_not_wedge_the_lifecycle(stack: Stack, name: str) -> None:
    async with stack.workers():
        agent_id, handle = await _pending_agent(stack, [APPROVER])
        try:
            await handle.signal(name, None)
            await _assert_untouched(stack, handle, agent_id)
        finally:
            await handle.terminate("hostile test over")


@pytest.mark.parametrize(
    ("name", "body"),
    [
        ("approve", {"approver": "a" * 129}),
        ("approve", {"approver": _HUGE}),
        ("reject", {"approver": "mallory\x00"}),
        ("update_skills", {"skills": ["web.search"], "requested_by": "a" * 300}),
    ],
    ids=["approver-129", "approver-huge", "approver-nul", "requested-by-300"],
)
async def test_overlong_or_nul_names_in_a_signal_do_not_fail_the_lifecycle(
    stack: Stack, name: str, body: dict[str, object]
) -> None:
    async with stack.workers():
        agent_id, handle = await _pending_agent(stack, [APPROVER])
        try:
            await handle.signal(name, body)
            await _assert_untouched(stack, handle, agent_id)
        finally:
            if (await handle.describe()).status == WorkflowExecutionStatus.RUNNING:
                await handle.terminate("hostile test over")


@pytest.mark.parametrize(
    "approver", ["ali\u202ece", "alice\n", "$(reboot)", "\x00"], ids=["rlo", "newline", "shell", "nul"]
)
async def test_malformed_approver_names_never_approve_even_when_anyone_may(stack: Stack, approver: str) -> None:
    async with stack.workers():
        agent_id, handle = await _pending_agent(stack, [])
        try:
            await handle.signal("approve", {"approver": approver, "reason": "let me in"})
            await _assert_untouched(stack, handle, agent_id)
        finally:
            if (await handle.describe()).status == WorkflowExecutionStatus.RUNNING:
                await handle.terminate("hostile test over")


@pytest.mark.parametrize(
    "body",
    [{"skills": "web", "approval_required": "pay"}, {"skills": {"web.search": 1, "a": 2}}],
    ids=["string", "object"],
)
async def test_a_skills_string_or_object_is_not_a_list(stack: Stack, body: dict[str, object]) -> None:
    async with stack.workers():
        agent_id, handle = await _pending_agent(stack, [APPROVER])
        try:
            await handle.signal("update_skills", body)
            await _settled(handle, stack, agent_id)
            policy = await stack.client.policy(agent_id)
            assert policy.skills == ["web.search"] and policy.version == 0, policy
        finally:
            await handle.terminate("hostile test over")


async def test_a_well_formed_destroy_with_hostile_text_ends_a_pending_agent_cleanly(stack: Stack) -> None:
    async with stack.workers():
        agent_id, handle = await _pending_agent(stack, [APPROVER])
        await handle.signal("destroy", {"requested_by": "m" + "a" * 300, "reason": "done"})
        try:
            result = await stack.client.result(agent_id)
        except WorkflowFailureError as err:
            raise AssertionError(f"the lifecycle failed: {err.cause}") from None
    assert result.state == AgentState.REJECTED
    assert stack.vms_of(agent_id) == 0
