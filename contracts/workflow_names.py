"""The names Temporal knows our workflows and their handlers by: one place for the workers that register them and the
callers (client, gateway, fleet monitor, orphan sweep, CLI) that reach them without importing the workflow classes.

A workflow type name is part of every history: changing one here breaks the replay of open workflows. Handler names
are the method names the workflows define (tests/workflows/test_names.py checks both against the classes).
"""

from __future__ import annotations

from typing import Final

AGENT_LIFECYCLE: Final = "AgentLifecycle"
TOOL_APPROVAL: Final = "ToolApproval"
KEY_ROTATION: Final = "KeyRotation"
ORPHAN_SWEEP: Final = "OrphanSweep"
FLEET_HEALTH: Final = "FleetHealth"
APPROVER_SETTINGS: Final = "ApproverSettings"
ACCOUNT_LIMITS: Final = "AccountLimits"
WARM_POOL: Final = "WarmPool"

# Handlers of AgentLifecycle and ToolApproval (both answer `status` and take `decide`, `approve` and `reject`).
STATUS_QUERY: Final = "status"
POLICY_QUERY: Final = "policy"
DECIDE_UPDATE: Final = "decide"
ADMISSION_UPDATE: Final = "admission"
APPROVE_SIGNAL: Final = "approve"
REJECT_SIGNAL: Final = "reject"
DESTROY_SIGNAL: Final = "destroy"
UPDATE_SKILLS_SIGNAL: Final = "update_skills"
HEALTH_CHANGED_SIGNAL: Final = "health_changed"
# Handlers of WarmPool (it answers `status` too).
POOL_CLAIM_UPDATE: Final = "claim"
POOL_RESIZE_UPDATE: Final = "resize"
POOL_DELETE_UPDATE: Final = "delete"

__all__ = [
    "ACCOUNT_LIMITS",
    "ADMISSION_UPDATE",
    "AGENT_LIFECYCLE",
    "APPROVER_SETTINGS",
    "APPROVE_SIGNAL",
    "DECIDE_UPDATE",
    "DESTROY_SIGNAL",
    "FLEET_HEALTH",
    "HEALTH_CHANGED_SIGNAL",
    "KEY_ROTATION",
    "ORPHAN_SWEEP",
    "POLICY_QUERY",
    "POOL_CLAIM_UPDATE",
    "POOL_DELETE_UPDATE",
    "POOL_RESIZE_UPDATE",
    "REJECT_SIGNAL",
    "STATUS_QUERY",
    "TOOL_APPROVAL",
    "UPDATE_SKILLS_SIGNAL",
    "WARM_POOL",
]
