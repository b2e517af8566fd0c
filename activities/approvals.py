"""Closing an agent's open tool approvals: when its lifecycle ends, and from the orphan sweep.

A ToolApproval is started by the gateway, not by the lifecycle, so the lifecycle finds its agent's open ones through
Temporal's visibility (workflow type, running, and the approval id `approval-<agent_id>-<request_id>`, which splits one
way: contracts/identifiers.py) and cancels each with a reason. The approval workflow ends `cancelled` with that reason
and audits it; a decision sent afterwards reaches a closed workflow and is refused. Visibility lags the start of a
workflow by a moment: an approval started in that moment is closed by the next orphan sweep, and a bridge whose agent
is gone cannot act on it anyway.
"""

from __future__ import annotations

from collections.abc import Iterable

from temporalio import activity
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from contracts.identifiers import AGENT_ID, approval_prefix, parse_approval_id
from contracts.models import ApprovalsClosed, CloseApprovals
from contracts.workflow_names import TOOL_APPROVAL

__all__ = ["ApprovalActivities", "cancel_approvals", "open_approvals"]

_OPEN = f'WorkflowType = "{TOOL_APPROVAL}" AND ExecutionStatus = "Running"'


async def open_approvals(client: Client, agent_id: str | None = None) -> dict[str, list[str]]:
    """Open approval workflow ids per agent id (of one agent, or of every agent)."""
    query = _OPEN
    if agent_id is not None:
        if not AGENT_ID.fullmatch(agent_id):  # never splice anything else into a visibility query
            raise ValueError(f"agent_id: {agent_id!r:.60} is not an agent id")
        query += f' AND WorkflowId STARTS_WITH "{approval_prefix(agent_id)}"'
    found: dict[str, list[str]] = {}
    async for execution in client.list_workflows(query):
        parsed = parse_approval_id(execution.id)
        # STARTS_WITH "approval-team-a-" also matches agent team-a-b's approvals: keep exactly this agent's.
        if parsed is not None and (agent_id is None or parsed[0] == agent_id):
            found.setdefault(parsed[0], []).append(execution.id)
    return found


async def cancel_approvals(client: Client, approval_ids: Iterable[str], reason: str) -> int:
    """Cancel each approval with `reason`; an approval already closed counts as done. Returns how many were asked."""
    cancelled = 0
    for approval_id in approval_ids:
        try:
            await client.get_workflow_handle(approval_id).cancel(reason=reason)
        except RPCError as err:
            if err.status != RPCStatusCode.NOT_FOUND:  # closed meanwhile (decided, expired): nothing left to close
                raise
            continue
        cancelled += 1
    return cancelled


class ApprovalActivities:
    def __init__(self, temporal: Client) -> None:
        self.temporal = temporal

    @activity.defn
    async def close_approvals(self, request: CloseApprovals) -> ApprovalsClosed:
        """Cancel every open approval of the agent. Idempotent: a retry finds the ones still open. An RPC error other
        than "already closed" is retried by Temporal: the lifecycle's cleanup retries until it succeeds."""
        ids = (await open_approvals(self.temporal, request.agent_id)).get(request.agent_id, [])
        cancelled = await cancel_approvals(self.temporal, ids, request.reason)
        if cancelled:
            activity.logger.info("closed %d open approval(s) of agent %s", cancelled, request.agent_id)
        return ApprovalsClosed(request.agent_id, cancelled)
