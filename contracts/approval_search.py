"""How a run that waits for a person is found in Temporal's visibility: its search attribute names and the queries.

Plain strings, so the light client and the docs share them with the workflows (workflows/search_attributes.py builds
the typed keys). Every name is registered on each server we start (`lobstack dev`, test fixtures, replay recording)
and, on a deployed cluster, once with `temporal operator search-attribute create` (deploy/README.md).
"""

from __future__ import annotations

from typing import Final, Literal

from contracts.workflow_names import FLEET_HEALTH, KEY_ROTATION, ORPHAN_SWEEP

APPROVAL_STATE: Final = "LobstackApprovalState"  # pending, then approved, rejected, expired or cancelled
APPROVAL_KIND: Final = "LobstackApprovalKind"  # agent (AgentLifecycle) or tool (ToolApproval)
ACCOUNT: Final = "LobstackAccount"
AGENT_ID: Final = "LobstackAgentId"
APPROVAL_DEADLINE: Final = "LobstackApprovalDeadline"  # when it expires (or escalates) without a decision

ApprovalKind = Literal["agent", "tool"]

# The documented query (README, docs/approvals.md): every agent and tool approval waiting for a person.
PENDING_APPROVALS_QUERY: Final = f'{APPROVAL_STATE} = "pending"'
# The same whatever the state: `lobstack approvals list --all`.
ALL_APPROVALS_QUERY: Final = f'{APPROVAL_STATE} in ("pending", "approved", "rejected", "expired", "cancelled")'
# Maintenance runs fill the Web UI's "All" view (a FleetHealth run every 30 s): this filter hides them.
HIDE_MAINTENANCE_FILTER: Final = f'WorkflowType not in ("{FLEET_HEALTH}", "{ORPHAN_SWEEP}", "{KEY_ROTATION}")'
