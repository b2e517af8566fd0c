"""ToolApproval: a human decides whether an agent may run a gated tool.

A bridge asks (through the gateway) before running a tool such as sending email. The workflow waits for `approve` or
`reject` from an allowed approver, sent from the Temporal Web UI (signals) or the CLI (the `decide` update, whose
validator returns a refusal to the caller). A decision from anyone else is refused and audited. No decision by the
deadline escalates to the escalation group when there is one, and otherwise rejects (`expired`).
"""

from __future__ import annotations

import json
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy, SearchAttributeKey
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.registry import RegistryActivities
    from workflows.decisions import ACTOR_MAX, REASON_MAX, audit_text, malformed, refusal
    from workflows.models import (
        AgentState,
        ApprovalDecision,
        ApprovalState,
        ApprovalStatus,
        Decision,
        ToolApprovalInput,
        Transition,
    )

# Registered on the server (`lobstack dev`, test fixtures): lets the Web UI list pending approvals with a query like
# `LobstackApprovalState = "pending"`.
APPROVAL_STATE = SearchAttributeKey.for_keyword("LobstackApprovalState")
REGISTRY_RETRY = RetryPolicy(maximum_interval=timedelta(seconds=60), maximum_attempts=0)


def approval_workflow_id(agent_id: str, request_id: str) -> str:
    return f"approval-{agent_id}-{request_id}"


@workflow.defn(name="ToolApproval")
class ToolApprovalWorkflow:
    @workflow.init
    def __init__(self, input: ToolApprovalInput) -> None:
        self._input = input
        self._state = ApprovalState.PENDING
        self._approvers = list(input.approvers)
        self._escalated = False
        self._decision: tuple[bool, Decision] | None = None
        self._refused: list[Decision] = []
        self._decided_at = None
        self._requested_at = workflow.now()
        self._events = 0

    @workflow.run
    async def run(self, input: ToolApprovalInput) -> ApprovalStatus:
        await self._audit("approval.requested", actor=input.requested_by, reason=f"{input.tool} ({input.risk} risk)")
        decided = await self._wait(timedelta(seconds=input.timeout_s))
        if not decided and input.escalation_approvers and input.escalation_timeout_s > 0:
            self._escalated = True
            self._approvers = list(dict.fromkeys([*self._approvers, *input.escalation_approvers]))
            await self._audit("approval.escalated", reason=f"no decision in {input.timeout_s}s")
            decided = await self._wait(timedelta(seconds=input.escalation_timeout_s))
        if decided and self._decision is not None:
            approved, decision = self._decision
            self._state = ApprovalState.APPROVED if approved else ApprovalState.REJECTED
            action = "approval.approved" if approved else "approval.rejected"
            self._decided_at = workflow.now()
            self._publish()
            await self._audit(action, actor=decision.approver, reason=decision.reason)
        else:
            self._state = ApprovalState.EXPIRED
            self._decided_at = workflow.now()
            self._publish()
            await self._audit("approval.expired", reason="no decision before the deadline")
        # Refusals are audited from handlers: let them finish before the workflow closes.
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self.status()

    async def _wait(self, budget: timedelta) -> bool:
        self._publish()
        try:
            await workflow.wait_condition(lambda: self._decision is not None, timeout=budget)
        except TimeoutError:
            # Caught on purpose: uncaught, it would fail the workflow task instead of expiring the request.
            return False
        return True

    def _publish(self) -> None:
        """Say what is awaited, in the UI's current details and in the search attribute approvers filter on."""
        i = self._input
        if i.publish_search_attribute:
            workflow.upsert_search_attributes([APPROVAL_STATE.value_set(self._state.value)])
        if self._state != ApprovalState.PENDING:
            who = f" by {self._decision[1].approver}: {self._decision[1].reason}" if self._decision else ""
            workflow.set_current_details(f"Decided: {self._state.value}{who} (tool `{i.tool}`, agent {i.agent_id}).")
            return
        # The UI renders current details as Markdown: example values, never <placeholders> it would eat as HTML.
        body = json.dumps({"approver": self._approvers[0] if self._approvers else "your-name", "reason": "why"})
        args = ", ".join(f"{k}={v}" for k, v in i.arguments.items()) or "none"
        escalated = " (escalated)" if self._escalated else ""
        workflow.set_current_details(
            f"Agent {i.agent_id} asks to run `{i.tool}` ({i.risk} risk) with arguments: {args}. "
            f"Allowed approvers{escalated}: {', '.join(self._approvers)}. To allow it, send signal `approve` with body "
            f"`{body}`; to refuse, send signal `reject` with the same body."
        )

    async def _audit(self, action: str, *, actor: str = "lobstack", reason: str = "") -> None:
        i = self._input
        info = workflow.info()
        self._events += 1
        details = {"tool": i.tool, "request_id": i.request_id, "approval_id": info.workflow_id}
        await workflow.execute_activity_method(
            RegistryActivities.record_transition,
            Transition(
                event_key=f"{info.workflow_id}/{info.run_id}/{self._events}",
                agent_id=i.agent_id,
                account_id=i.account_id,
                state=AgentState.RUNNING,
                action=action,
                actor=audit_text(actor, ACTOR_MAX),
                reason=audit_text(reason, REASON_MAX),
                at=workflow.now(),
                details=details,
                audit_only=True,
            ),
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=REGISTRY_RETRY,
        )

    # --- decisions --------------------------------------------------------------------------------------------------

    def _refusal(self, decision: Decision) -> str:
        waiting = self._state == ApprovalState.PENDING and self._decision is None
        return refusal(decision, waiting=waiting, state=self._state.value, allowed=self._approvers)

    def _decide(self, approved: bool, decision: Decision) -> None:
        refusal = self._refusal(decision)
        if refusal:
            # Signals cannot answer: the refusal is kept, counted in the status and audited.
            self._refused.append(decision)
            workflow.logger.warning("refused a decision on %s: %s", workflow.info().workflow_id, refusal)
            return
        self._decision = (approved, decision)

    # JSON null from the UI counts as an empty body.
    @workflow.signal
    async def approve(self, decision: Decision | None = None) -> None:
        await self._signalled(True, decision or Decision())

    @workflow.signal
    async def reject(self, decision: Decision | None = None) -> None:
        await self._signalled(False, decision or Decision())

    async def _signalled(self, approved: bool, decision: Decision) -> None:
        refusal = self._refusal(decision)
        self._decide(approved, decision)
        if refusal and decision.approver.strip():
            await self._audit("approval.refused", actor=decision.approver, reason=refusal)

    @workflow.update
    async def decide(self, decision: ApprovalDecision) -> ApprovalStatus:
        """The CLI's way to decide: a refusal comes back to the caller (and is audited) instead of vanishing."""
        plain = Decision(approver=decision.approver, reason=decision.reason)
        refusal = self._refusal(plain)
        if refusal:
            self._refused.append(plain)
            await self._audit("approval.refused", actor=decision.approver, reason=refusal)
            raise ApplicationError(refusal, type="ApproverNotAllowed", non_retryable=True)
        self._decision = (decision.approved, plain)
        await workflow.wait_condition(lambda: self._state != ApprovalState.PENDING)
        return self.status()

    @decide.validator
    def _validate_decide(self, decision: ApprovalDecision) -> None:
        # Only what needs no audit is refused here, before it reaches history.
        waiting = self._state == ApprovalState.PENDING and self._decision is None
        why = malformed(Decision(approver=decision.approver), waiting=waiting, state=self._state.value)
        if why:
            raise ValueError(why)

    @workflow.query
    def status(self) -> ApprovalStatus:
        i = self._input
        decided_by, reason = ("", "")
        if self._decision is not None and self._state in (ApprovalState.APPROVED, ApprovalState.REJECTED):
            decided_by, reason = self._decision[1].approver, self._decision[1].reason
        return ApprovalStatus(
            approval_id=workflow.info().workflow_id,
            agent_id=i.agent_id,
            tool=i.tool,
            state=self._state,
            approvers=list(self._approvers),
            escalated=self._escalated,
            decided_by=decided_by,
            reason=reason,
            requested_at=self._requested_at,
            decided_at=self._decided_at,
            refused=len(self._refused),
        )
