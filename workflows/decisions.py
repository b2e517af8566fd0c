"""The one rule for human decisions, shared by agent approvals and tool approvals."""

from __future__ import annotations

from collections.abc import Sequence

from workflows.models import Decision

APPROVER_REQUIRED = 'the body needs {"approver": "your-name"}'


def malformed(decision: Decision, *, waiting: bool, state: str) -> str:
    """What makes a decision meaningless whoever sends it (refused by update validators, before history)."""
    if not waiting:
        return f"not waiting for a decision (state {state})"
    if not decision.approver.strip():
        return APPROVER_REQUIRED
    return ""


def refusal(decision: Decision, *, waiting: bool, state: str, allowed: Sequence[str] | None) -> str:
    """Why a decision cannot count, or "" when it can. `allowed=None` lets anyone who names themselves decide."""
    bad = malformed(decision, waiting=waiting, state=state)
    if bad:
        return bad
    if allowed is not None and decision.approver not in allowed:
        return f"{decision.approver!r} is not an allowed approver (allowed: {', '.join(allowed)})"
    return ""
