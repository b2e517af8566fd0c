"""Operator commands of `lobstack`: schedules, key rotation, orphan sweep, and agent data.

`add_ops_commands(subparsers)` adds them to the CLI's parser; they read the global `--address`, `--namespace` and
`--task-queue` options and reach Temporal through `clients.cli_common.connect`, the CLI's one client (with the
workers' payload codec). Agent data values are read from a file or stdin and written to stdout, never taken from the
command line (argv is visible to every user of the machine); they can change only while the agent is running.

    lobstack schedules install [--rotation-every-days N] [--sweep-every-minutes N] [--health-every-seconds N]
    lobstack keys rotate [--batch-size N]
    lobstack sweep [--dry-run]
    lobstack agent-data put AGENT_ID NAME --account ACCOUNT [--file PATH]   (stdin by default)
    lobstack agent-data get AGENT_ID NAME [--account ACCOUNT]
    lobstack agent-data list AGENT_ID
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import uuid
from dataclasses import asdict
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from clients.cli_common import (
    EXIT_FAILED,
    CommandFailed,
    connect,
    open_registry,
    validate_account_id,
    vault_settings,
)
from contracts.spec import SpecError, validate_agent_id

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

__all__ = ["add_ops_commands"]


def _positive(field_name: str) -> Any:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{field_name}: {text!r} is not a whole number") from None
        if value < 1:
            raise argparse.ArgumentTypeError(f"{field_name}: {value} is not allowed; must be at least 1")
        return value

    return parse


def _print(result: DataclassInstance) -> None:
    print(json.dumps(asdict(result), indent=2, default=str))


# --- schedules, rotation, sweep ------------------------------------------------------------------------------------


def cmd_schedules_install(args: argparse.Namespace) -> int:
    from workers.schedules import install_schedules

    async def go() -> int:
        client = await connect(args)
        installed = await install_schedules(
            client.temporal,
            task_queue=client.task_queue,
            rotation_every=timedelta(days=args.rotation_every_days),
            sweep_every=timedelta(minutes=args.sweep_every_minutes),
            health_every=timedelta(seconds=args.health_every_seconds),
        )
        for item in installed:
            print(f"{item.schedule_id}: {'created' if item.created else 'updated'}")
        return 0

    return asyncio.run(go())


def cmd_keys_rotate(args: argparse.Namespace) -> int:
    from contracts.maintenance_models import KEY_ROTATION_SCHEDULE, RotationInput
    from workflows.key_rotation import KeyRotationWorkflow

    async def go() -> int:
        client = await connect(args)
        result = await client.temporal.execute_workflow(
            KeyRotationWorkflow.run,
            RotationInput(batch_size=args.batch_size),
            id=f"{KEY_ROTATION_SCHEDULE}-manual-{uuid.uuid4().hex[:12]}",
            task_queue=client.task_queue,
        )
        _print(result)
        return 0

    return asyncio.run(go())


def cmd_sweep(args: argparse.Namespace) -> int:
    from contracts.maintenance_models import ORPHAN_SWEEP_SCHEDULE, SweepInput
    from workflows.orphan_sweep import OrphanSweepWorkflow

    async def go() -> int:
        client = await connect(args)
        result = await client.temporal.execute_workflow(
            OrphanSweepWorkflow.run,
            SweepInput(dry_run=args.dry_run),
            id=f"{ORPHAN_SWEEP_SCHEDULE}-manual-{uuid.uuid4().hex[:12]}",
            task_queue=client.task_queue,
        )
        _print(result)
        return 0

    return asyncio.run(go())


# --- agent data ----------------------------------------------------------------------------------------------------


def _data_store() -> Any:
    from activities.secrets import AgentVault
    from activities.secrets.agent_data import AgentDataStore

    settings = vault_settings()
    return AgentDataStore(AgentVault(settings), open_registry())


def _read_value(path: str | None) -> bytes:
    if not path:
        return sys.stdin.buffer.read()
    try:
        with open(path, "rb") as fh:
            return fh.read()
    except OSError as err:
        raise SpecError("file", f"cannot read {path}: {err.strerror or type(err).__name__}") from None


def _require_running(store: Any, agent_id: str, account_id: str) -> None:
    """Agent data changes only while the agent runs: before that it has no Transit key (Vault refuses, Forbidden),
    after that its data is gone. Says which it is and what to do."""
    from contracts.models import AgentState

    agent = store.registry.get(agent_id)
    if agent is None or agent.account_id != account_id:
        raise CommandFailed(
            f"agent_id: no agent {agent_id!r} under account {account_id!r}: check both with `lobstack agent list` "
            "and `lobstack agent status`"
        )
    if agent.state in (AgentState.RUNNING, AgentState.DEGRADED):
        return
    if agent.state == AgentState.PENDING_APPROVAL:
        todo = f"approve it (`lobstack agent approve {agent_id} --approver NAME`), then retry once it is running"
    elif agent.state == AgentState.PROVISIONING:
        todo = f"retry once `lobstack agent status {agent_id}` says running"
    else:
        todo = "its data is deleted with it; create a new agent"
    raise CommandFailed(f"agent {agent_id!r} is {agent.state.value}: its data can change only while it runs; {todo}")


def cmd_data_put(args: argparse.Namespace) -> int:
    from activities.secrets.agent_data import validate_data_name

    validate_agent_id(args.agent_id)
    validate_account_id(args.account)
    validate_data_name(args.name)
    value = _read_value(args.file)
    store = _data_store()
    try:
        _require_running(store, args.agent_id, args.account)
        version = store.put(args.agent_id, args.account, args.name, value)
    finally:
        store.registry.close()
    print(f"stored {args.name} for agent {args.agent_id} ({len(value)} bytes, key version {version})")
    return 0


def cmd_data_get(args: argparse.Namespace) -> int:
    from activities.secrets.agent_data import AgentDataMissing, validate_data_name

    validate_agent_id(args.agent_id)
    validate_data_name(args.name)
    if args.account is not None:
        validate_account_id(args.account)
    store = _data_store()
    try:
        value = store.get(args.agent_id, args.name, account_id=args.account)
    except AgentDataMissing as err:
        print(f"lobstack: error: {err}: see `lobstack agent-data list {args.agent_id}`", file=sys.stderr)
        return EXIT_FAILED
    finally:
        store.registry.close()
    sys.stdout.buffer.write(value)
    sys.stdout.buffer.flush()
    return 0


def cmd_data_list(args: argparse.Namespace) -> int:
    validate_agent_id(args.agent_id)
    store = _data_store()
    try:
        for name in store.names(args.agent_id):
            print(name)
    finally:
        store.registry.close()
    return 0


# --- parser --------------------------------------------------------------------------------------------------------


def add_ops_commands(subparsers: Any) -> None:
    """Add `schedules`, `keys`, `sweep` and `agent-data` to the `lobstack` subcommands."""
    schedules = subparsers.add_parser("schedules", help="maintenance schedules: key rotation, orphan sweep, health")
    schedules_sub = schedules.add_subparsers(dest="schedules_command", required=True)
    install = schedules_sub.add_parser("install", help="create or update the three schedules (idempotent)")
    install.add_argument("--rotation-every-days", type=_positive("rotation_every_days"), default=90)
    install.add_argument("--sweep-every-minutes", type=_positive("sweep_every_minutes"), default=60)
    install.add_argument("--health-every-seconds", type=_positive("health_every_seconds"), default=30)
    install.set_defaults(func=cmd_schedules_install)

    keys = subparsers.add_parser("keys", help="agents' Transit keys")
    keys_sub = keys.add_subparsers(dest="keys_command", required=True)
    rotate = keys_sub.add_parser("rotate", help="rotate every agent key and rewrap stored data now; prints totals")
    rotate.add_argument("--batch-size", type=_positive("batch_size"), default=25, help="agents per activity")
    rotate.set_defaults(func=cmd_keys_rotate)

    sweep = subparsers.add_parser("sweep", help="remove VMs and secrets no running lifecycle owns; prints counts")
    sweep.add_argument("--dry-run", action="store_true", help="only report what would be removed")
    sweep.set_defaults(func=cmd_sweep)

    data = subparsers.add_parser("agent-data", help="an agent's stored data, encrypted with its Transit key")
    data_sub = data.add_subparsers(dest="data_command", required=True)
    put = data_sub.add_parser("put", help="store a value read from --file or stdin")
    put.add_argument("agent_id")
    put.add_argument("name", help="item name: 1-63 of a-z, 0-9, '.', '_', '-'")
    put.add_argument("--account", required=True, help="the agent's account id")
    put.add_argument("--file", help="read the value from this file (default: stdin)")
    put.set_defaults(func=cmd_data_put)
    get = data_sub.add_parser("get", help="write a stored value to stdout")
    get.add_argument("agent_id")
    get.add_argument("name")
    get.add_argument("--account", help="refuse unless stored under this account")
    get.set_defaults(func=cmd_data_get)
    listing = data_sub.add_parser("list", help="names of an agent's stored items")
    listing.add_argument("agent_id")
    listing.set_defaults(func=cmd_data_list)
