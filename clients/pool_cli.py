"""`lobstack pool ...`: warm pools of ready VMs (issue 15).

`add_pool_commands(subparsers)` adds `set`, `list`, `status` and `delete`. They go through `LobstackClient` (the
WarmPool workflows), so they need only Temporal, like the agent commands.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from dataclasses import asdict
from typing import Any

from clients.cli_common import connect
from contracts.pool import (
    DEFAULT_MAX_IDLE_S,
    POOL_PROVIDERS,
    PoolSize,
    PoolStatus,
    validate_pool_key,
    validate_pool_size,
)
from contracts.spec import REGIONS, SIZES

__all__ = ["add_pool_commands"]


def _line(s: PoolStatus) -> str:
    state = "deleting" if s.deleting else ("paused" if s.paused_until else ("failing" if s.failing else "ok"))
    return (
        f"{s.pool_id:<28} desired {s.min}-{s.max}  ready {s.ready}  booting {s.booting}  claimed {s.claimed}  "
        f"failed {s.failed}  {state}"
    )


def _show(s: PoolStatus) -> None:
    print(_line(s))
    print(f"claims served: {s.claims}; found empty: {s.empty_claims}; VMs recycled after {s.max_idle_s}s idle")
    if s.paused_until:
        print(f"paused until {s.paused_until:%Y-%m-%d %H:%M:%S} UTC after {s.failing} failed creates in a row")
    if s.last_error:
        print(f"last error: {s.last_error}")
    for vm in s.vms:
        held = f" by agent {vm.agent_id}" if vm.agent_id else ""
        since = f" since {vm.since:%H:%M:%S}" if vm.since else ""
        print(f"  {vm.slot}  {vm.status}{held}  vm {vm.vm_id or '-'}  {vm.address or '-'}{since}")


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def cmd_pool(args: argparse.Namespace) -> int:
    # Refused before anything is contacted, naming the field (exit 2).
    if args.pool_command != "list":
        validate_pool_key(args.provider, args.region, args.size)
    if args.pool_command == "set":
        validate_pool_size(PoolSize(args.min, args.max, args.max_idle))

    async def go() -> int:
        client = await connect(args)
        command = args.pool_command
        if command == "list":
            pools = await client.list_pools()
            if args.json:
                print(_json([asdict(p) for p in pools]))
            elif not pools:
                print("no warm pools; start one with `lobstack pool set`")
            for pool in [] if args.json else pools:
                print(_line(pool))
            return 0
        where = (args.provider, args.region, args.size)
        if command == "set":
            status = await client.set_pool(*where, min=args.min, max=args.max, max_idle_s=args.max_idle)
        elif command == "delete":
            status = await client.delete_pool(*where, wait=not args.no_wait)
        else:
            status = await client.pool_status(*where)
        if args.json:
            print(_json(asdict(status)))
        else:
            _show(status)
        return 0

    return asyncio.run(go())


def add_pool_commands(subparsers: Any) -> None:
    pool = subparsers.add_parser("pool", help="warm pools of ready VMs, one per provider, region and size")
    sub = pool.add_subparsers(dest="pool_command", required=True)
    change = sub.add_parser("set", help="start a pool or resize it (also resumes a pool paused after failures)")
    change.add_argument("--min", type=int, required=True, metavar="N", help="ready VMs to keep")
    change.add_argument("--max", type=int, required=True, metavar="N", help="most VMs the pool may hold")
    change.add_argument(
        "--max-idle", type=int, default=DEFAULT_MAX_IDLE_S, metavar="SECONDS", help="recycle a ready VM this old"
    )
    status = sub.add_parser("status", help="desired, ready, booting, claimed and failed VMs of one pool")
    delete = sub.add_parser("delete", help="delete every VM of a pool and end it")
    delete.add_argument("--no-wait", action="store_true", help="return once the delete is accepted")
    for p in (change, status, delete):
        p.add_argument("--provider", required=True, choices=POOL_PROVIDERS)
        p.add_argument("--region", required=True, choices=REGIONS)
        p.add_argument("--size", required=True, choices=SIZES)
    sub.add_parser("list", help="every running pool")
    for p in sub.choices.values():
        p.add_argument("--json", action="store_true", help="print as JSON")
        p.set_defaults(func=cmd_pool)
