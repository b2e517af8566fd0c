"""The one rule for human decisions, shared by agent approvals and tool approvals."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from contracts.approver_policy import AccountApprovalPolicy
from contracts.messages import MessageRefused, one_message
from contracts.models import ApprovalDecision, Decision
from contracts.spec import APPROVER_RULE, PLACEHOLDER_RULE, approver_name_ok, is_placeholder_approver

# What the current details and descriptions show: an approver that fails the name rule, so the body cannot be sent
# unchanged and approve anyone as "your-name". In backticks in the current details, so Markdown shows it as text.
YOUR_NAME = "<your approver name>"
DECISION_BODY = json.dumps({"approver": YOUR_NAME, "reason": "why"})
UPDATE_BODY = json.dumps({"approver": YOUR_NAME, "reason": "why", "approved": True})
APPROVER_REQUIRED = f'the body needs {{"approver": ...}} with your own approver name ({APPROVER_RULE})'
PASTED_UNCHANGED = f'approver: put your own approver name in place of "{YOUR_NAME}"'
# The audit trail's actor column; longer names are clipped, never allowed to fail the audit write.
ACTOR_MAX = 128
REASON_MAX = 500


def audit_text(text: str, limit: int) -> str:
    """Text from a signal body, fit for an audit column: NUL (which PostgreSQL text cannot hold) made visible, clipped.

    Everything else is kept as sent: the audit trail records what was claimed, not a prettier version of it.
    """
    text = text.replace("\x00", "\\x00")
    return text if len(text) <= limit else text[: limit - 3] + "..."


def malformed(decision: Decision, *, waiting: bool, state: str) -> str:
    """What makes a decision meaningless whoever sends it (refused by update validators, before history)."""
    if not waiting:
        return f"not waiting for a decision (state {state})"
    if not decision.approver.strip():
        return APPROVER_REQUIRED
    if decision.approver == YOUR_NAME:
        return PASTED_UNCHANGED
    if is_placeholder_approver(decision.approver):
        return f"approver: {PLACEHOLDER_RULE}; put your own approver name there"
    if not approver_name_ok(decision.approver):
        # The name is the audit record's actor; the refusal itself never repeats what was sent.
        return f"approver: must be {APPROVER_RULE}"
    return ""


def refusal(decision: Decision, *, waiting: bool, state: str, allowed: Sequence[str] | None) -> str:
    """Why a decision cannot count, or "" when it can. `allowed=None` lets anyone who names themselves decide."""
    bad = malformed(decision, waiting=waiting, state=state)
    if bad:
        return bad
    if allowed is not None and decision.approver not in allowed:
        return f"approver: not an allowed approver here (allowed: {', '.join(allowed)})"
    return ""


def update_refusal(
    body: tuple[Any, ...], *, waiting: bool, state: str, allowed: Sequence[str] | None
) -> tuple[str, str]:
    """For a `decide` update's validator: (error type, why) when the update can never count, else ("", "").

    Pure (validators must not change state or run activities): what it refuses never enters history, so it is not
    audited; the sender reads the refusal in the Web UI's update dialog or as the CLI's error.
    """
    try:
        decision = one_message(body, ApprovalDecision, example=UPDATE_BODY)
    except MessageRefused as err:
        return "MessageRefused", str(err)
    why = refusal(Decision(decision.approver, decision.reason), waiting=waiting, state=state, allowed=allowed)
    return ("ApproverNotAllowed", why) if why else ("", "")


def policy_refusal(
    decision: Decision,
    policy: AccountApprovalPolicy,
    *,
    approved: bool,
    requested_by: str = "",
    earlier: Sequence[Decision] = (),
) -> str:
    """Why the account's approval policy refuses a decision that passed `refusal`, or "" when it may count."""
    account = policy.account_id
    if not policy.approvers:
        return f"account {account} has no approvers: add one with `lobstack approvers add --account {account} NAME`"
    if decision.approver not in policy.approvers:
        return f"approver: not an approver of account {account} (approvers: {', '.join(policy.approvers)})"
    if approved and policy.four_eyes and requested_by and decision.approver == requested_by:
        return f"four eyes: {account} requires an approver other than the requester"
    if approved and decision.approver in [d.approver for d in earlier]:
        return "two approvals: this approver has approved already; a different approver must give the second"
    return ""
