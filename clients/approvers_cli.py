"""`lobstack approvers ...`: an account's approvers and approval policy (issue 13, "trusted").

`add_approvers_commands(subparsers)` adds them to the CLI's parser. They go through `LobstackClient` (the
ApproverSettings workflow), so they need only Temporal, like the agent commands.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from typing import Any

from clients.cli_common import connect, validate_account_id
from contracts.approver_policy import AccountApprovalPolicy, ApproverChange, validate_change
from contracts.spec import SIZES

__all__ = ["add_approvers_commands", "cmd_approvers"]


def _print(policy: AccountApprovalPolicy, as_json: bool) -> None:
    if as_json:
        print(json.dumps(asdict(policy), sort_keys=True))
        return
    print(f"account: {policy.account_id}")
    print(f"approvers: {', '.join(policy.approvers) or 'none (agents needing approval are refused)'}")
    print(f"four eyes: {'yes' if policy.four_eyes else 'no'}")
    print(f"two approvals for skills: {', '.join(policy.two_approvals_skills) or 'none'}")
    print(f"two approvals for sizes: {', '.join(policy.two_approvals_sizes) or 'none'}")
    print(f"identity must match approver: {'yes' if policy.require_identity_match else 'no'}")


def _csv(text: str | None) -> list[str] | None:
    if text is None:
        return None
    return [part.strip() for part in text.split(",") if part.strip()]


def cmd_approvers(args: argparse.Namespace) -> int:
    import asyncio

    validate_account_id(args.account)
    action = args.approvers_command
    if action == "list":
        action = "show"
    change = ApproverChange(
        account_id=args.account,
        action=action,
        name=getattr(args, "name", "") or "",
        four_eyes=getattr(args, "four_eyes", None),
        two_approvals_skills=_csv(getattr(args, "two_approvals_skills", None)),
        two_approvals_sizes=_csv(getattr(args, "two_approvals_sizes", None)),
        require_identity_match=getattr(args, "require_identity_match", None),
    )
    validate_change(change)  # refused before anything is contacted

    async def go() -> int:
        client = await connect(args)
        _print(await client.change_approvers(change), args.json)
        return 0

    return asyncio.run(go())


def add_approvers_commands(subparsers: Any) -> None:
    approvers = subparsers.add_parser("approvers", help="an account's approvers and approval policy")
    sub = approvers.add_subparsers(dest="approvers_command", required=True)
    for verb, text in (("add", "make NAME an approver of the account"), ("remove", "NAME no longer approves")):
        p = sub.add_parser(verb, help=text)
        p.add_argument("name", help="a user name or e-mail, as approvers sign decisions")
    sub.add_parser("list", help="the account's approvers and policy")
    policy = sub.add_parser("policy", help="change the account's approval policy (options left out stay as they are)")
    policy.add_argument(
        "--four-eyes", action=argparse.BooleanOptionalAction, default=None, help="the requester cannot approve"
    )
    policy.add_argument(
        "--two-approvals-skills", metavar="SKILL,...", help="agents with any of these skills need two approvers"
    )
    policy.add_argument(
        "--two-approvals-sizes", metavar="SIZE,...", help=f"agents of these sizes need two ({', '.join(SIZES)})"
    )
    policy.add_argument(
        "--require-identity-match",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="a decision counts only when its approver is the caller's Temporal identity",
    )
    for p in sub.choices.values():
        p.add_argument("--account", required=True, help="the account id")
        p.add_argument("--json", action="store_true", help="print the policy as JSON")
        p.set_defaults(func=cmd_approvers)
