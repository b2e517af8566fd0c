"""Who approves for an account, and what its approvals require: the account's approval policy.

Kept in the registry (table `approval_policies`, under row-level security) and read by the workflows at decision
time, so an approver removed from the account stops counting at once, for agents already waiting too. Changed
through `lobstack approvers ...` or `LobstackClient.change_approvers`, both of which run the `ApproverSettings`
workflow (one activity), so the client needs no database.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, get_args

from contracts.spec import (
    _ACCOUNT_ID,
    _SKILL,
    ACCOUNT_ID_RULE,
    SIZES,
    SKILL_RULE,
    SpecError,
    _check_names,
    _check_pattern,
    validate_approvers,
)

__all__ = [
    "APPROVER_ACTIONS",
    "AccountApprovalPolicy",
    "ApproverAction",
    "ApproverChange",
    "CallerLookup",
    "apply_change",
    "validate_change",
]

ApproverAction = Literal["show", "add", "remove", "policy"]
APPROVER_ACTIONS: tuple[ApproverAction, ...] = get_args(ApproverAction)


@dataclass
class AccountApprovalPolicy:
    account_id: str
    approvers: list[str] = field(default_factory=list)
    # The person who asked for the agent (`requested_by`) may not approve it.
    four_eyes: bool = False
    # Agents with any of these skills or sizes need two approvals from different approvers.
    two_approvals_skills: list[str] = field(default_factory=list)
    two_approvals_sizes: list[str] = field(default_factory=list)
    # A decision counts only when its declared approver is the identity Temporal recorded for its sender.
    require_identity_match: bool = False

    def approvals_needed(self, skills: list[str], size: str) -> int:
        if size in self.two_approvals_sizes or set(skills) & set(self.two_approvals_skills):
            return 2
        return 1


@dataclass
class ApproverChange:
    """One change (or `show`) of an account's approval policy; policy fields left None stay as they are."""

    account_id: str
    action: ApproverAction = "show"
    name: str = ""
    four_eyes: bool | None = None
    two_approvals_skills: list[str] | None = None
    two_approvals_sizes: list[str] | None = None
    require_identity_match: bool | None = None


@dataclass
class CallerLookup:
    """Which history event carried a decision: the `seq`-th signal named `handler` of the run, or the update
    `update_id`. Its caller identity is what Temporal recorded, not what the body claims."""

    workflow_id: str
    run_id: str
    handler: str
    signal_seq: int = 0
    update_id: str = ""


def validate_change(change: ApproverChange) -> None:
    """Raise SpecError naming the first bad field: before anything is started or stored."""
    _check_pattern("account", change.account_id, _ACCOUNT_ID, ACCOUNT_ID_RULE)
    if change.action not in APPROVER_ACTIONS:
        raise SpecError("action", f"choose one of: {', '.join(APPROVER_ACTIONS)}")
    if change.action in ("add", "remove"):
        validate_approvers("name", [change.name])
    elif change.name:
        raise SpecError("name", f"is given only to add or remove, not to {change.action}")
    for flag in ("four_eyes", "require_identity_match"):
        value = getattr(change, flag)
        if value is not None and not isinstance(value, bool):
            raise SpecError(flag, "must be true or false")
    if change.two_approvals_skills is not None:
        _check_names("two_approvals_skills", change.two_approvals_skills, _SKILL, SKILL_RULE)
    if change.two_approvals_sizes is not None:
        if not isinstance(change.two_approvals_sizes, list):
            raise SpecError("two_approvals_sizes", "must be a list")
        for size in change.two_approvals_sizes:
            if size not in SIZES:
                raise SpecError("two_approvals_sizes", f"{size!r:.40} is not allowed; choose from: {', '.join(SIZES)}")


def apply_change(policy: AccountApprovalPolicy, change: ApproverChange) -> AccountApprovalPolicy:
    """The policy after `change` (already validated). Adding a present name or removing an absent one changes
    nothing, so a retried change is harmless."""
    approvers = list(policy.approvers)
    if change.action == "add" and change.name not in approvers:
        approvers.append(change.name)
    elif change.action == "remove":
        approvers = [a for a in approvers if a != change.name]
    return AccountApprovalPolicy(
        account_id=policy.account_id,
        approvers=approvers,
        four_eyes=policy.four_eyes if change.four_eyes is None else change.four_eyes,
        two_approvals_skills=(
            policy.two_approvals_skills if change.two_approvals_skills is None else list(change.two_approvals_skills)
        ),
        two_approvals_sizes=(
            policy.two_approvals_sizes if change.two_approvals_sizes is None else list(change.two_approvals_sizes)
        ),
        require_identity_match=(
            policy.require_identity_match if change.require_identity_match is None else change.require_identity_match
        ),
    )
