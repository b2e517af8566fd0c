"""Approval notices from inside a workflow: sent in the background, never in the way of the approval itself.

A workflow that waits for a person holds one `ApprovalNotices` and calls `send` (pending, escalated, decided,
expired) and `remind_at` (a timer that sends a reminder if the approval is still pending then). Each notice runs as
its own asyncio task: it asks which endpoints the account has, then delivers to each with retries; a delivery that
still fails is audited as `approval.notice_failed` through the workflow's own audit callback, and the failure is
swallowed. Nothing here raises into the workflow. Before the workflow returns it calls `drain`: reminders are
cancelled, deliveries under way get a bounded moment to finish, and what is left is cancelled (and audited), so a
closed workflow leaves no activity behind.

`enabled` comes from `workflow.patched(PATCH_APPROVAL_NOTICES)`: histories recorded before notices existed replay
with none of these commands.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.webhooks import WebhookActivities
    from contracts.models import ToolApprovalInput
    from contracts.spec import AgentSpec
    from contracts.webhooks import ApprovalNotice, NoticeTargets, WebhookDelivery
    from workflows.retries import NOTICE_RETRY, REGISTRY_RETRY

__all__ = [
    "NOTICE_DRAIN",
    "PATCH_APPROVAL_NOTICES",
    "ApprovalNotices",
    "agent_notice",
    "tool_notice",
]

PATCH_APPROVAL_NOTICES = "approval-notices"
NOTICE_BUDGET = timedelta(minutes=10)
# How long a closing workflow waits for deliveries still under way (each attempt is bounded by DELIVERY_TIMEOUT).
NOTICE_DRAIN = timedelta(seconds=30)
DELIVERY_TIMEOUT = timedelta(seconds=30)

Audit = Callable[[str, str], Awaitable[None]]


class ApprovalNotices:
    def __init__(self, *, enabled: bool, audit: Audit) -> None:
        """`audit(action, reason)` writes an audit-only event of the workflow (it may raise; that is swallowed)."""
        self.enabled = enabled
        self._audit = audit
        self._sent = 0
        self._tasks: list[asyncio.Task[None]] = []
        self._timers: list[asyncio.Task[None]] = []

    def send(self, notice: ApprovalNotice) -> None:
        """Deliver `notice` in the background (its `notice_id` is set here: workflow, run and sequence)."""
        if not self.enabled:
            return
        info = workflow.info()
        self._sent += 1
        notice.notice_id = f"{info.workflow_id}/{info.run_id}/{self._sent}"
        notice.workflow_id, notice.run_id = info.workflow_id, info.run_id
        self._tasks.append(asyncio.create_task(self._deliver(notice)))

    def remind_at(self, delay: timedelta, notices: Callable[[], list[ApprovalNotice]]) -> None:
        """After `delay`, send what `notices()` returns (nothing once the approval is decided)."""
        if not self.enabled:
            return
        self._timers.append(asyncio.create_task(self._remind(delay, notices)))

    def cancel_reminders(self) -> None:
        for timer in self._timers:
            if not timer.done():
                timer.cancel()

    async def drain(self) -> None:
        """Cancel reminders, let deliveries under way finish within NOTICE_DRAIN, cancel the rest. Never raises."""
        if not self.enabled:
            return
        self.cancel_reminders()
        if not all(t.done() for t in self._tasks):
            with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                await workflow.wait_condition(lambda: all(t.done() for t in self._tasks), timeout=NOTICE_DRAIN)
        for task in self._tasks:
            if not task.done():
                task.cancel()
        # Each task ends itself on cancellation (its audit included); wait for that so nothing is left running.
        await asyncio.shield(asyncio.gather(*self._tasks, *self._timers, return_exceptions=True))

    async def _remind(self, delay: timedelta, notices: Callable[[], list[ApprovalNotice]]) -> None:
        try:
            await workflow.sleep(delay)
        except asyncio.CancelledError:
            return
        for notice in notices():
            self.send(notice)

    async def _deliver(self, notice: ApprovalNotice) -> None:
        targets = NoticeTargets(notice.account_id)
        results: list[object] = []
        try:
            targets = await workflow.execute_activity_method(
                WebhookActivities.notice_targets,
                NoticeTargets(notice.account_id),
                start_to_close_timeout=DELIVERY_TIMEOUT,
                schedule_to_close_timeout=NOTICE_BUDGET,
                retry_policy=REGISTRY_RETRY,
            )
            sends = [
                workflow.execute_activity_method(
                    WebhookActivities.deliver_webhook,
                    WebhookDelivery(endpoint_id, notice),
                    start_to_close_timeout=DELIVERY_TIMEOUT,
                    schedule_to_close_timeout=NOTICE_BUDGET,
                    retry_policy=NOTICE_RETRY,
                )
                for endpoint_id in targets.endpoint_ids
            ]
            results = list(await asyncio.gather(*sends, return_exceptions=True))
        except (Exception, asyncio.CancelledError) as err:  # a notice never fails or blocks the workflow
            if not targets.endpoint_ids:
                targets = NoticeTargets(notice.account_id, ["(its endpoints)"])
            results = [err] * len(targets.endpoint_ids)
        for endpoint_id, result in zip(targets.endpoint_ids, results, strict=False):
            if isinstance(result, BaseException):
                await self._failed(notice, endpoint_id, result)

    async def _failed(self, notice: ApprovalNotice, endpoint_id: str, err: BaseException) -> None:
        cause = getattr(err, "cause", None) or err
        why = "cancelled: the workflow closed first" if isinstance(err, asyncio.CancelledError) else str(cause)
        workflow.logger.warning("approval notice %s to %s failed: %s", notice.notice_id, endpoint_id, why)
        try:
            await asyncio.shield(
                asyncio.ensure_future(self._audit("approval.notice_failed", f"{notice.type} to {endpoint_id}: {why}"))
            )
        except (Exception, asyncio.CancelledError) as audit_err:  # a failed notice's audit must not fail the workflow
            workflow.logger.warning("could not audit a failed notice %s: %s", notice.notice_id, audit_err)


# --- what the two workflows announce ---------------------------------------------------------------------------------


def agent_notice(
    spec: AgentSpec, type: str, *, deadline: datetime | None = None, approvers: list[str] | None = None,
    decision: str = "", decided_by: str = "", reason: str = "",
) -> ApprovalNotice:  # fmt: skip
    """A notice about AgentLifecycle's approval gate (kind `agent`)."""
    return ApprovalNotice(
        notice_id="",
        type=type,
        kind="agent",
        account_id=spec.account_id,
        agent_id=spec.agent_id,
        workflow_id="",
        run_id="",
        summary=(
            f"Approve agent {spec.agent_id} ({spec.name}) for account {spec.account_id} on "
            f"{spec.provider}/{spec.region}/{spec.size}, skills: {', '.join(spec.skills) or 'none'}"
        ),
        approvers=list(spec.approvers if approvers is None else approvers),
        deadline=deadline,
        decision=decision,
        decided_by=decided_by,
        reason=reason,
        cli=f'lobstack agent approve {spec.agent_id} --approver YOUR_NAME --reason "why"',
        cli_reject=f'lobstack agent reject {spec.agent_id} --approver YOUR_NAME --reason "why"',
    )


def tool_notice(
    request: ToolApprovalInput, type: str, *, approvers: list[str], deadline: datetime | None = None,
    decision: str = "", decided_by: str = "", reason: str = "",
) -> ApprovalNotice:  # fmt: skip
    """A notice about a ToolApproval (kind `tool`); the tool's arguments stay out (the Web UI shows them)."""
    approval_id = workflow.info().workflow_id
    asked_by = f", requested by {request.requested_by}" if request.requested_by else ""
    return ApprovalNotice(
        notice_id="",
        type=type,
        kind="tool",
        account_id=request.account_id,
        agent_id=request.agent_id,
        workflow_id="",
        run_id="",
        summary=(
            f"Allow agent {request.agent_id} of account {request.account_id} to run {request.tool} "
            f"({request.risk} risk){asked_by}"
        ),
        approvers=list(approvers),
        deadline=deadline,
        decision=decision,
        decided_by=decided_by,
        reason=reason,
        cli=f'lobstack approvals approve {approval_id} --approver YOUR_NAME --reason "why"',
        cli_reject=f'lobstack approvals reject {approval_id} --approver YOUR_NAME --reason "why"',
    )
