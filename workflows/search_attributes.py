"""What a run that waits for a person publishes for the Web UI's list, and the one query that finds it.

Every key here is registered on each server we start (`lobstack dev`, test fixtures, replay recording) and, on a
deployed cluster, once with `temporal operator search-attribute create` (deploy/README.md). AgentLifecycle sets them
with kind `agent` while it waits for approval, ToolApproval with kind `tool`.
"""

from __future__ import annotations

from typing import Any

from temporalio.common import SearchAttributeKey

from contracts.workflow_names import FLEET_HEALTH, KEY_ROTATION, ORPHAN_SWEEP

APPROVAL_STATE = SearchAttributeKey.for_keyword("LobstackApprovalState")  # pending, approved, rejected, expired, ...
APPROVAL_KIND = SearchAttributeKey.for_keyword("LobstackApprovalKind")  # agent or tool
ACCOUNT = SearchAttributeKey.for_keyword("LobstackAccount")
AGENT_ID = SearchAttributeKey.for_keyword("LobstackAgentId")
APPROVAL_DEADLINE = SearchAttributeKey.for_datetime("LobstackApprovalDeadline")

APPROVAL_KEYS: tuple[SearchAttributeKey[Any], ...] = (
    APPROVAL_STATE,
    APPROVAL_KIND,
    ACCOUNT,
    AGENT_ID,
    APPROVAL_DEADLINE,
)

# The documented query (README, docs/approvals.md): every agent and tool approval waiting for a person.
PENDING_APPROVALS_QUERY = 'LobstackApprovalState = "pending"'
# The same, whatever the state: what `lobstack approvals list --all` shows.
ALL_APPROVALS_QUERY = 'LobstackApprovalState in ("pending", "approved", "rejected", "expired", "cancelled")'
# Maintenance runs that would otherwise fill the Web UI's "All" view; add this filter to hide them.
HIDE_MAINTENANCE_FILTER = f'WorkflowType not in ("{FLEET_HEALTH}", "{ORPHAN_SWEEP}", "{KEY_ROTATION}")'


def server_flags() -> list[str]:
    """`temporal server start-dev` arguments that register every key."""
    flags: list[str] = []
    for key in APPROVAL_KEYS:
        flags += ["--search-attribute", f"{key.name}={key.indexed_value_type.name.title()}"]
    return flags
