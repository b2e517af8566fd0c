"""The one rule for human decisions, shared by agent approvals and tool approvals."""

from __future__ import annotations

from collections.abc import Sequence

from contracts.models import Decision
from contracts.spec import APPROVER_RULE, approver_name_ok

APPROVER_REQUIRED = 'the body needs {"approver": "your-name"}'
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
