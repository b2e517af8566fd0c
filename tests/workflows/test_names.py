"""The names callers use (contracts.workflow_names) are the names the workflow classes register: a caller that
reaches a workflow by name can never drift from it, and the type names stay those of the recorded histories."""

from __future__ import annotations

from temporalio.workflow import _Definition

from contracts import workflow_names as names
from workflows.agent_lifecycle import AgentLifecycleWorkflow
from workflows.fleet_health import FleetHealthWorkflow
from workflows.key_rotation import KeyRotationWorkflow
from workflows.orphan_sweep import OrphanSweepWorkflow
from workflows.tool_approval import ToolApprovalWorkflow


def test_workflow_type_names_are_the_ones_histories_were_recorded_with() -> None:
    registered = {
        cls: _Definition.must_from_class(cls).name
        for cls in (
            AgentLifecycleWorkflow,
            ToolApprovalWorkflow,
            KeyRotationWorkflow,
            OrphanSweepWorkflow,
            FleetHealthWorkflow,
        )
    }
    # Literal names on the right: a rename in contracts must fail here, since open histories carry the old name.
    assert registered == {
        AgentLifecycleWorkflow: "AgentLifecycle",
        ToolApprovalWorkflow: "ToolApproval",
        KeyRotationWorkflow: "KeyRotation",
        OrphanSweepWorkflow: "OrphanSweep",
        FleetHealthWorkflow: "FleetHealth",
    }
    assert set(registered.values()) == {
        names.AGENT_LIFECYCLE,
        names.TOOL_APPROVAL,
        names.KEY_ROTATION,
        names.ORPHAN_SWEEP,
        names.FLEET_HEALTH,
    }


def test_the_lifecycle_handlers_callers_name_exist() -> None:
    defn = _Definition.must_from_class(AgentLifecycleWorkflow)
    assert {names.STATUS_QUERY, names.POLICY_QUERY} <= set(defn.queries)
    assert {names.DECIDE_UPDATE} <= set(defn.updates)
    signals = {names.APPROVE_SIGNAL, names.REJECT_SIGNAL, names.DESTROY_SIGNAL, names.UPDATE_SKILLS_SIGNAL}
    assert signals | {names.HEALTH_CHANGED_SIGNAL} <= set(defn.signals)


def test_the_approval_handlers_callers_name_exist() -> None:
    defn = _Definition.must_from_class(ToolApprovalWorkflow)
    assert names.STATUS_QUERY in defn.queries
    assert names.DECIDE_UPDATE in defn.updates
    assert {names.APPROVE_SIGNAL, names.REJECT_SIGNAL} <= set(defn.signals)
