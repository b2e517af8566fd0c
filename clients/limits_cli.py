"""`lobstack limits ...`: an account's quotas and agent lifetimes (issue 14).

`add_limits_commands(subparsers)` adds them to the CLI's parser. They go through `LobstackClient` (the AccountLimits
workflow), so they need only Temporal, like the agent commands.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

from clients.cli_common import connect, validate_account_id
from contracts.limits import AccountLimits, LimitsChange, parse_duration, validate_limits_change

__all__ = ["add_limits_commands", "cmd_limits"]


def _amount(field_name: str) -> Callable[[str], int]:
    def parse(text: str) -> int:
        said = text.strip().lower()
        if said == "none":
            return 0
        if not said.isdigit() or len(said) > 9:
            raise argparse.ArgumentTypeError(
                f"{field_name}: {text[:40]!r} is not a whole number; write 0 or none for no limit"
            )
        return int(said)

    return parse


def _shown(seconds: int, none: str) -> str:
    if not seconds:
        return none
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit} ({seconds}s)"
    return f"{seconds}s"


def _print(limits: AccountLimits, as_json: bool) -> None:
    if as_json:
        print(json.dumps(asdict(limits), sort_keys=True))
        return
    print(f"account: {limits.account_id}")
    print(f"max agents: {limits.max_agents or 'no limit'}")
    print(f"max vCPUs: {limits.max_vcpus or 'no limit'}")
    for currency in ("usd", "eur"):
        cap = getattr(limits, f"max_monthly_{currency}")
        print(f"max monthly spend in {currency.upper()}: {f'{cap} {currency.upper()}' if cap else 'no limit'}")
    print(f"default max lifetime: {_shown(limits.default_max_lifetime_s, 'none')}")
    print(f"default idle timeout: {_shown(limits.default_idle_timeout_s, 'none')}")
    print(f"max lifetime an agent may ask for: {_shown(limits.max_lifetime_s, 'no limit')}")


def cmd_limits(args: argparse.Namespace) -> int:
    import asyncio

    validate_account_id(args.account)
    change = LimitsChange(account_id=args.account, action=args.limits_command)
    if args.limits_command == "set":
        change.max_agents = args.max_agents
        change.max_vcpus = args.max_vcpus
        change.max_monthly_usd = args.max_monthly_usd
        change.max_monthly_eur = args.max_monthly_eur
        for name in ("default_max_lifetime", "default_idle_timeout", "max_lifetime"):
            text = getattr(args, name)
            if text is not None:
                setattr(change, f"{name}_s", parse_duration(name.replace("_", "-"), text))
    validate_limits_change(change)  # refused before anything is contacted

    async def go() -> int:
        client = await connect(args)
        _print(await client.change_limits(change), args.json)
        return 0

    return asyncio.run(go())


def add_limits_commands(subparsers: Any) -> None:
    limits = subparsers.add_parser("limits", help="an account's quotas and agent lifetimes")
    sub = limits.add_subparsers(dest="limits_command", required=True)
    sub.add_parser("show", help="the account's quotas and lifetimes")
    change = sub.add_parser(
        "set", help="change quotas and lifetimes (options left out stay as they are; 0 or none removes one)"
    )
    change.add_argument("--max-agents", type=_amount("max-agents"), metavar="N", help="live agents at once")
    change.add_argument("--max-vcpus", type=_amount("max-vcpus"), metavar="N", help="vCPUs of the live agents")
    for currency, who in (("usd", "DigitalOcean and Vultr"), ("eur", "Hetzner")):
        change.add_argument(
            f"--max-monthly-{currency}",
            type=_amount(f"max-monthly-{currency}"),
            metavar="N",
            help=f"whole {currency.upper()} a month the live agents' VMs may cost at {who}'s list prices",
        )
    duration = "a duration: 90s, 15m, 2h, 3d, or 0/none"
    change.add_argument("--default-max-lifetime", metavar="DURATION", help=f"for agents that set none; {duration}")
    change.add_argument(
        "--default-idle-timeout",
        metavar="DURATION",
        help=f"destroy an agent after this long without an agent API request, unless it sets its own; {duration}",
    )
    change.add_argument("--max-lifetime", metavar="DURATION", help=f"the most an agent may ask for; {duration}")
    for p in sub.choices.values():
        p.add_argument("--account", required=True, help="the account id")
        p.add_argument("--json", action="store_true", help="print the limits as JSON")
        p.set_defaults(func=cmd_limits)
