"""ToolApproval: a human decides whether an agent may run a gated tool.

A bridge asks (through the gateway) before running a tool such as sending email. The workflow waits for `approve` or
`reject` from an allowed approver, sent from the Temporal Web UI (signals) or the CLI (the `decide` update, whose
validator returns a refusal to the caller). A decision from anyone else is refused and audited. No decision by the
deadline escalates to the escalation group when there is one, and otherwise rejects (`expired`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from datetime import datetime, timedelta
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.common import SearchAttributeUpdate, VersioningBehavior
from temporalio.exceptions import ActivityError, ApplicationError, is_cancelled_exception

from contracts.workflow_names import TOOL_APPROVAL

with workflow.unsafe.imports_passed_through():
    from activities.approver_policy import ApproverPolicyActivities
    from activities.registry import RegistryActivities
    from contracts.messages import MessageRefused, one_message
    from contracts.models import (
        AgentState,
        ApprovalDecision,
        ApprovalState,
        ApprovalStatus,
        Decision,
        ToolApprovalInput,
        Transition,
    )
    from contracts.webhooks import ApprovalNotice
    from workflows.caller import caller_identity, identity_refusal
    from workflows.decisions import (
        ACTOR_MAX,
        DECISION_BODY,
        REASON_MAX,
        UPDATE_BODY,
        audit_text,
        policy_refusal,
        refusal,
        update_refusal,
    )
    from workflows.notices import PATCH_APPROVAL_NOTICES, ApprovalNotices, tool_notice
    from workflows.retries import REGISTRY_RETRY
    from workflows.search_attributes import ACCOUNT, AGENT_ID, APPROVAL_DEADLINE, APPROVAL_KIND, APPROVAL_STATE

T = TypeVar("T")


# Histories recorded before every refusal was audited replay without those audits (workflow.patched).
PATCH_AUDIT_EVERY_REFUSAL = "audit-every-refusal"
# ... and before a cancellation closed an approval as `cancelled` (it ended the workflow as cancelled then).
PATCH_CANCEL_CLOSES = "cancel-closes-approval"
# ... and before it said its kind, agent, account and deadline beside its state (workflows/search_attributes.py).
PATCH_APPROVAL_ATTRIBUTES = "approval-search-attributes"
# ... and before a decision was checked against the account's approvers, read when it arrives (the input's list,
# from the agent's spec or the gateway's default, then only narrows them).
PATCH_ACCOUNT_APPROVERS = "account-approvers"


# Pinned: a run that waits days for a person or lives for months never meets another release's code; old
# workers serve it until it ends (docs/upgrades.md).
@workflow.defn(name=TOOL_APPROVAL, versioning_behavior=VersioningBehavior.PINNED)
class ToolApprovalWorkflow:
    @workflow.init
    def __init__(self, *args: Any) -> None:
        # Started by the gateway, but anyone with a Temporal client can start one: the input is checked here.
        try:
            input = one_message(args, ToolApprovalInput)
            self._invalid = ""
        except MessageRefused as err:
            input = ToolApprovalInput(agent_id="", account_id="", request_id="", tool="")
            self._invalid = str(err)
        self._input = input
        self._state = ApprovalState.PENDING
        self._approvers = list(input.approvers)
        self._escalated = False
        self._decision: tuple[bool, Decision] | None = None
        self._refused: list[Decision] = []
        self._decided_at: datetime | None = None
        self._requested_at = workflow.now()
        self._events = 0
        self._refused_note = ""
        self._details = ""
        self._cancel_reason = ""
        self._deadline = self._requested_at + timedelta(seconds=input.timeout_s)
        # Webhook notices (workflows/notices.py): enabled in `_until_decided` for runs that have the patch.
        self._notices = ApprovalNotices(enabled=False, audit=self._notice_failed)
        # Who Temporal recorded as each decision's sender, and how many of each signal arrived (to find its event).
        self._identities: list[tuple[Decision, str]] = []
        self._signals_seen: dict[str, int] = {}

    @workflow.run
    async def run(self, *args: Any) -> ApprovalStatus:
        input = self._input
        if self._invalid:
            raise ApplicationError(f"invalid input: {self._invalid}", type="InvalidInput", non_retryable=True)
        if input.timeout_s < 1 or input.escalation_timeout_s < 0:
            raise ApplicationError(
                "invalid input: timeout_s must be at least 1 and escalation_timeout_s at least 0",
                type="InvalidInput",
                non_retryable=True,
            )
        try:
            decided = await self._until_decided(input)
        except (asyncio.CancelledError, ActivityError) as err:
            # Its agent is gone (the lifecycle's cleanup or the orphan sweep cancels it, with the reason).
            if not is_cancelled_exception(err) or not workflow.patched(PATCH_CANCEL_CLOSES):
                raise
            return await self._close_cancelled()
        await self._shielded(self._conclude(decided))
        # Refusals are audited from handlers: let them finish before the workflow closes.
        await workflow.wait_condition(workflow.all_handlers_finished)
        await self._shielded(self._notices.drain())
        return self.status()

    async def _until_decided(self, input: ToolApprovalInput) -> bool:
        self._notices = ApprovalNotices(enabled=workflow.patched(PATCH_APPROVAL_NOTICES), audit=self._notice_failed)
        await self._audit("approval.requested", actor=input.requested_by, reason=f"{input.tool} ({input.risk} risk)")
        self._notices.send(self._notice("approval.pending"))
        self._notices.remind_at(timedelta(seconds=input.timeout_s / 2), lambda: self._pending("approval.reminder"))
        decided = await self._wait(timedelta(seconds=input.timeout_s))
        if not decided and input.escalation_approvers and input.escalation_timeout_s > 0:
            self._escalated = True
            self._approvers = list(dict.fromkeys([*self._approvers, *input.escalation_approvers]))
            await self._audit("approval.escalated", reason=f"no decision in {input.timeout_s}s")
            self._deadline = workflow.now() + timedelta(seconds=input.escalation_timeout_s)
            self._notices.send(self._notice("approval.escalated"))
            decided = await self._wait(timedelta(seconds=input.escalation_timeout_s))
        return decided

    async def _conclude(self, decided: bool) -> None:
        if decided and self._decision is not None:
            approved, decision = self._decision
            self._state = ApprovalState.APPROVED if approved else ApprovalState.REJECTED
            action = "approval.approved" if approved else "approval.rejected"
            self._decided_at = workflow.now()
            self._publish()
            await self._audit(action, actor=decision.approver, reason=decision.reason, extra=self._identity(decision))
            self._notices.send(self._notice("approval.decided"))
        else:
            self._state = ApprovalState.EXPIRED
            self._decided_at = workflow.now()
            self._publish()
            await self._audit("approval.expired", reason="no decision before the deadline")
            self._notices.send(self._notice("approval.expired"))

    async def _close_cancelled(self) -> ApprovalStatus:
        self._state = ApprovalState.CANCELLED
        self._decided_at = workflow.now()
        self._cancel_reason = workflow.cancellation_reason() or "cancelled"
        self._publish()
        await self._shielded(self._audit("approval.cancelled", reason=self._cancel_reason))
        self._notices.send(self._notice("approval.decided"))
        await workflow.wait_condition(workflow.all_handlers_finished)
        await self._shielded(self._notices.drain())
        return self.status()

    async def _shielded(self, step: Awaitable[None]) -> None:
        """Run `step` to its end even if a cancellation arrives meanwhile: a decision or a closing is always audited."""
        task = asyncio.ensure_future(step)
        while True:
            try:
                await asyncio.shield(task)
                return
            except asyncio.CancelledError:
                if task.done():
                    raise

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
            found: list[SearchAttributeUpdate[Any]] = [APPROVAL_STATE.value_set(self._state.value)]
            if workflow.patched(PATCH_APPROVAL_ATTRIBUTES):
                found += [
                    APPROVAL_KIND.value_set("tool"),
                    ACCOUNT.value_set(i.account_id),
                    AGENT_ID.value_set(i.agent_id),
                    APPROVAL_DEADLINE.value_set(self._deadline),
                ]
            workflow.upsert_search_attributes(found)
        if self._state != ApprovalState.PENDING:
            who = f" by {self._decision[1].approver}: {self._decision[1].reason}" if self._decision else ""
            if self._state == ApprovalState.CANCELLED:
                who = f": {self._cancel_reason}"
            self._refused_note = ""
            self._details = f"Decided: {self._state.value}{who} (tool `{i.tool}`, agent {i.agent_id})."
            workflow.set_current_details(self._details)
            return
        # The body in backticks (Markdown code, so its <placeholder> shows as text) cannot be sent unchanged.
        body = DECISION_BODY
        args = ", ".join(f"{k}={v}" for k, v in i.arguments.items()) or "none"
        escalated = " (escalated)" if self._escalated else ""
        allowed = ", ".join(self._approvers) or "the account's approvers"
        self._details = (
            f"Agent {i.agent_id} asks to run `{i.tool}` ({i.risk} risk) with arguments: {args}. "
            f"Allowed approvers{escalated}: {allowed}. To allow it, send signal `approve` with body "
            f"`{body}`; to refuse, send signal `reject` with the same body."
        )
        workflow.set_current_details(self._details + self._refused_note)

    async def _audit(
        self, action: str, *, actor: str = "lobstack", reason: str = "", extra: dict[str, str] | None = None
    ) -> None:
        i = self._input
        info = workflow.info()
        self._events += 1
        details = {"tool": i.tool, "request_id": i.request_id, "approval_id": info.workflow_id, **(extra or {})}
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

    # --- notices (workflows/notices.py) -------------------------------------------------------------------------------

    def _notice(self, type: str) -> ApprovalNotice:
        status = self.status()
        decision = "" if self._state == ApprovalState.PENDING else self._state.value
        return tool_notice(
            self._input, type, approvers=list(self._approvers), deadline=self._deadline, decision=decision,
            decided_by=status.decided_by, reason=status.reason,
        )  # fmt: skip

    def _pending(self, type: str) -> list[ApprovalNotice]:
        waiting = self._state == ApprovalState.PENDING and self._decision is None
        return [self._notice(type)] if waiting else []

    async def _notice_failed(self, action: str, reason: str) -> None:
        await self._audit(action, reason=reason)

    # --- decisions --------------------------------------------------------------------------------------------------

    def _refusal(self, decision: Decision, *, by_account: bool = False) -> str:
        """`by_account`: the account's approvers decide, the input's list (when not empty) only narrows them."""
        waiting = self._state == ApprovalState.PENDING and self._decision is None
        allowed = self._approvers or (None if by_account else [])
        return refusal(decision, waiting=waiting, state=self._state.value, allowed=allowed)

    def _identity(self, decision: Decision) -> dict[str, str]:
        found = next((who for d, who in self._identities if d is decision), "")
        return {"identity": found} if found else {}

    async def _against_account(self, handler: str, seq: int, decision: Decision) -> str:
        """Why the account's approvers, read now, refuse the decision ("" when it may count). Records who Temporal
        says sent it, for the audit trail and the account's identity match."""
        identity = await caller_identity(handler, seq)
        self._identities.append((decision, identity))
        policy = await workflow.execute_activity_method(
            ApproverPolicyActivities.account_policy,
            self._input.account_id,
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=REGISTRY_RETRY,
        )
        why = self._refusal(decision, by_account=True) or policy_refusal(decision, policy, approved=False)
        if not why and policy.require_identity_match:
            why = identity_refusal(decision.approver, identity)
        return why

    async def _receive(
        self, handler: str, body: tuple[Any, ...], cls: type[T], example: str = DECISION_BODY
    ) -> T | None:
        try:
            return one_message(body, cls, example=example)
        except MessageRefused as err:
            await self._refuse(handler, str(err), actor=_claimed_approver(body))
            return None

    async def _refuse(
        self, handler: str, why: str, *, actor: str, audited_before: bool = False, extra: dict[str, str] | None = None
    ) -> None:
        """Shown in the current details until a valid decision arrives, counted in the status, audited (who, which
        handler, why; never the body's values). Never raises: a refusal must not fail the workflow."""
        self._refused.append(Decision(approver=actor))
        self._refused_note = (
            f" Last decision refused ({workflow.now():%Y-%m-%d %H:%M:%S} UTC): `{handler}`: "
            f"{audit_text(why, REASON_MAX)}."
        )
        workflow.set_current_details(self._details + self._refused_note)
        workflow.logger.warning("refused %s on %s: %s", handler, workflow.info().workflow_id, why)
        if self._invalid:
            return
        if not audited_before and not workflow.patched(PATCH_AUDIT_EVERY_REFUSAL):
            return
        try:
            await self._audit(
                "approval.refused",
                actor=actor if actor.strip() else "unknown",
                reason=f"{handler}: {why}",
                extra={"handler": handler, **(extra or {})},
            )
        except ActivityError as err:
            workflow.logger.warning("could not audit a refused %s: %s", handler, err)

    def _accept(self, approved: bool, decision: Decision) -> None:
        if self._refused_note:
            self._refused_note = ""
            workflow.set_current_details(self._details)
        self._decision = (approved, decision)

    # JSON null or no body from the UI counts as an empty body.
    @workflow.signal(description=f"Allow the agent to run the tool. Body: {DECISION_BODY}")
    async def approve(self, *body: Any) -> None:
        seq = self._signal_arrived("approve")
        decision = await self._receive("approve", body, Decision)
        if decision is not None:
            await self._signalled("approve", True, decision, seq)

    @workflow.signal(description=f"Refuse the tool run. Body: {DECISION_BODY}")
    async def reject(self, *body: Any) -> None:
        seq = self._signal_arrived("reject")
        decision = await self._receive("reject", body, Decision)
        if decision is not None:
            await self._signalled("reject", False, decision, seq)

    def _signal_arrived(self, handler: str) -> int:
        """Which signal of this name this is, counted before any await: handlers start in history order."""
        self._signals_seen[handler] = self._signals_seen.get(handler, 0) + 1
        return self._signals_seen[handler]

    async def _signalled(self, handler: str, approved: bool, decision: Decision, seq: int) -> None:
        by_account = workflow.patched(PATCH_ACCOUNT_APPROVERS)
        why = self._refusal(decision, by_account=by_account)
        if why:
            await self._refuse(handler, why, actor=decision.approver, audited_before=bool(decision.approver.strip()))
            return
        if by_account:
            why = await self._against_account(handler, seq, decision)
            if why:
                await self._refuse(handler, why, actor=decision.approver, extra=self._identity(decision))
                return
        self._accept(approved, decision)

    @workflow.update(description=f"Decide; a refusal comes back to the caller. Body: {UPDATE_BODY}")
    async def decide(self, *body: Any) -> ApprovalStatus:
        """The CLI's way to decide: a refusal comes back to the caller (and is audited) instead of vanishing."""
        decision = await self._receive("decide", body, ApprovalDecision, UPDATE_BODY)
        if decision is None:
            raise ApplicationError(self._refused_note.strip(), type="MessageRefused", non_retryable=True)
        plain = Decision(approver=decision.approver, reason=decision.reason)
        by_account = workflow.patched(PATCH_ACCOUNT_APPROVERS)
        why = self._refusal(plain, by_account=by_account)
        if not why and by_account:
            why = await self._against_account("decide", 0, plain)
        if why:
            await self._refuse("decide", why, actor=decision.approver, audited_before=True, extra=self._identity(plain))
            raise ApplicationError(why, type="ApproverNotAllowed", non_retryable=True)
        self._accept(decision.approved, plain)
        await workflow.wait_condition(lambda: self._state != ApprovalState.PENDING)
        return self.status()

    @decide.validator
    def _validate_decide(self, *body: Any) -> None:
        """Refuses, before anything enters history, what can never count: the Web UI's update dialog shows why."""
        waiting = self._state == ApprovalState.PENDING and self._decision is None
        # The account's approvers are read by the handler; an empty input list narrows nothing.
        kind, why = update_refusal(body, waiting=waiting, state=self._state.value, allowed=self._approvers or None)
        if why:
            raise ApplicationError(why, type=kind, non_retryable=True)

    @workflow.query(description="The request, its approvers and its decision.")
    def status(self, *args: Any) -> ApprovalStatus:
        if args:
            raise ApplicationError(f"query status takes no arguments; {len(args)} were sent", type="MessageRefused")
        i = self._input
        decided_by, reason = ("", "")
        if self._decision is not None and self._state in (ApprovalState.APPROVED, ApprovalState.REJECTED):
            decided_by, reason = self._decision[1].approver, self._decision[1].reason
        elif self._state == ApprovalState.CANCELLED:
            reason = self._cancel_reason
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


def _claimed_approver(body: tuple[Any, ...]) -> str:
    """Who a refused message says it is from (its `approver`, when a string), else "unknown"."""
    if len(body) == 1 and isinstance(body[0], dict):
        value = body[0].get("approver")
        if isinstance(value, str) and value.strip():
            return value
    return "unknown"
