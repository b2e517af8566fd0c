"""The `lobstack` command line, built on LobstackClient.

Input is validated before any connection is made: a bad value exits with status 2 and a message that names the field
and what is allowed. Every command reaches Temporal through `clients.cli_common.connect`, and every failure ends as one
line on stderr with a documented exit status (`clients.cli_common.EXIT_STATUS_HELP`).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import asdict
from datetime import datetime
from typing import Any

from clients.approvers_cli import add_approvers_commands
from clients.audit_cli import add_audit_commands
from clients.catalog_cli import add_catalog_commands, check_offered
from clients.cli_common import (
    EXIT_INTERRUPTED,
    EXIT_STATUS_HELP,
    EXIT_UNAVAILABLE,
    EXIT_USAGE,
    CommandFailed,
    Parser,
    connect,
    report,
    temporal_target,
    vault_settings,
)
from clients.db_cli import add_db_commands
from clients.limits_cli import add_limits_commands
from clients.ops_cli import add_ops_commands
from clients.pool_cli import add_pool_commands
from clients.webhooks_cli import add_webhook_commands
from contracts.approval_search import PENDING_APPROVALS_QUERY as PENDING
from contracts.limits import parse_duration
from contracts.models import AgentState, AgentStatus
from contracts.queues import WORKFLOW_QUEUE
from contracts.spec import (
    DEFAULT_APPROVAL_TIMEOUT_S,
    DEFAULT_HEALTH_TIMEOUT_S,
    PROVIDERS,
    REGIONS,
    SIZES,
    AgentSpec,
    SpecError,
    validate_agent_id,
    validate_skills,
    validate_spec,
    validate_tool_patterns,
)

DEFAULT_DESTROY_WAIT_S = 600


def _run(coro: Coroutine[Any, Any, int]) -> int:
    return asyncio.run(coro)


def _print_status(status: AgentStatus, as_json: bool) -> None:
    if as_json:
        print(json.dumps(asdict(status), default=_json_default, indent=2))
        return
    for key, value in asdict(status).items():
        if value not in ("", None):
            shown = value.isoformat(timespec="seconds") if isinstance(value, datetime) else value
            print(f"{key:>12}: {shown}")


def _json_default(value: object) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


# --- agent commands ------------------------------------------------------------------------------------------------


def cmd_agent_create(args: argparse.Namespace) -> int:
    if args.agent_id is not None:
        # Given, it must be an id: an empty or blank --agent-id is refused, never taken for "choose one for me".
        validate_agent_id(args.agent_id)
    spec = AgentSpec(
        account_id=args.account,
        name=args.name,
        provider=args.provider,
        region=args.region,
        size=args.size,
        skills=list(args.skill or []),
        require_approval=args.require_approval,
        strict_region=args.strict_region,
        agent_id=args.agent_id if args.agent_id is not None else "",
        approval_timeout_s=args.approval_timeout,
        health_timeout_s=args.health_timeout,
        approvers=list(args.approver or []),
        max_lifetime_s=parse_duration("max-lifetime", args.max_lifetime) if args.max_lifetime else 0,
        idle_timeout_s=parse_duration("idle-timeout", args.idle_timeout) if args.idle_timeout else 0,
    )
    validate_spec(spec)
    check_offered(spec, os.environ)  # a size the provider does not sell there: exit 2 with what it sells
    wait_s = args.wait_timeout if args.wait_timeout is not None else args.health_timeout + 120

    async def go() -> int:
        client = await connect(args)
        agent_id = await client.create_agent(spec, requested_by=args.requested_by)
        print(agent_id, flush=True)
        if args.wait:
            wanted = {AgentState.RUNNING, AgentState.PENDING_APPROVAL}
            try:
                status = await client.wait_for(agent_id, wanted, timeout_s=wait_s, max_interval_s=2.0)
            except TimeoutError as err:
                raise CommandFailed(
                    f"{err}; it was created and may still get there: see `lobstack agent status {agent_id}`",
                    EXIT_UNAVAILABLE,
                ) from None
            _print_status(status, as_json=False)
        return 0

    return _run(go())


def cmd_agent_status(args: argparse.Namespace) -> int:
    validate_agent_id(args.agent_id)

    async def go() -> int:
        client = await connect(args)
        _print_status(await client.status(args.agent_id, timeout_s=args.timeout), args.json)
        return 0

    return _run(go())


def cmd_agent_list(args: argparse.Namespace) -> int:
    async def go() -> int:
        client = await connect(args)
        agents = await client.list_agents(running_only=args.running)
        for agent in agents:
            started = agent.started_at.isoformat(timespec="seconds") if agent.started_at else "-"
            print(f"{agent.agent_id:<42} {agent.workflow_status:<12} {started}")
        if not agents:
            print("no agents", file=sys.stderr)
        return 0

    return _run(go())


def _decision_command(approve: bool) -> Callable[[argparse.Namespace], int]:
    def command(args: argparse.Namespace) -> int:
        validate_agent_id(args.agent_id)
        if not args.approver.strip():
            raise SpecError("approver", "is required")

        async def go() -> int:
            client = await connect(args)
            send = client.approve if approve else client.reject
            status = await send(args.agent_id, approver=args.approver, reason=args.reason)
            if approve and status.state == AgentState.PENDING_APPROVAL:
                # The account needs two approvals: this one is recorded, the agent still waits.
                print(f"recorded {args.approver}'s approval of {args.agent_id}: {status.waiting_for.split('. ')[0]}")
                return 0
            print(f"{'approved' if approve else 'rejected'} {args.agent_id} as {args.approver}")
            return 0

        return _run(go())

    return command


def cmd_agent_destroy(args: argparse.Namespace) -> int:
    validate_agent_id(args.agent_id)

    async def go() -> int:
        client = await connect(args)
        await client.destroy(args.agent_id, requested_by=args.requested_by, reason=args.reason)
        print(f"destroy requested for {args.agent_id}", flush=True)
        if args.wait:
            try:
                result = await asyncio.wait_for(client.result(args.agent_id), timeout=args.wait_timeout)
            except TimeoutError:
                raise CommandFailed(
                    f"agent {args.agent_id!r} is not destroyed yet after {args.wait_timeout}s; the destroy goes on: "
                    f"see `lobstack agent status {args.agent_id}`",
                    EXIT_UNAVAILABLE,
                ) from None
            print(f"{args.agent_id}: {result.state.value}")
        return 0

    return _run(go())


def cmd_agent_skills(args: argparse.Namespace) -> int:
    validate_agent_id(args.agent_id)
    skills = list(args.skill or [])
    validate_skills(skills)
    gated = list(args.approval_required) if args.approval_required is not None else None
    if gated is not None:
        validate_tool_patterns(gated)

    async def go() -> int:
        client = await connect(args)
        await client.update_skills(args.agent_id, skills, approval_required=gated, requested_by=args.requested_by)
        print(f"skills of {args.agent_id}: {', '.join(skills) or 'none'}")
        return 0

    return _run(go())


# --- approval commands ---------------------------------------------------------------------------------------------


def cmd_approvals_list(args: argparse.Namespace) -> int:
    async def go() -> int:
        client = await connect(args)
        # The documented query (contracts/approval_search.py): agent and tool approvals alike, as the Web UI finds them.
        approvals = await client.pending_approvals(all_states=args.all)
        for a in approvals:
            deadline = f"{a.deadline:%Y-%m-%d %H:%M} UTC" if a.deadline else "-"
            noun = "agent" if a.kind == "agent" else "approvals"
            target = a.agent_id if a.kind == "agent" else a.workflow_id
            print(
                f"{a.kind:<5} {a.state:<9} {a.account_id or '-':<16} {a.agent_id:<40} until {deadline:<20} "
                f"lobstack {noun} approve {target} --approver NAME"
            )
        if not approvals:
            print("no pending approvals", file=sys.stderr)
        return 0

    return _run(go())


def _approval_command(approved: bool) -> Callable[[argparse.Namespace], int]:
    def command(args: argparse.Namespace) -> int:
        from clients.client import validate_approval_id

        validate_approval_id(args.approval_id)
        if not args.approver.strip():
            raise SpecError("approver", "is required")

        async def go() -> int:
            client = await connect(args)
            status = await client.decide_approval(
                args.approval_id, approver=args.approver, approved=approved, reason=args.reason
            )
            print(f"{status.approval_id}: {status.state.value} by {status.decided_by}")
            return 0

        return _run(go())

    return command


# --- process commands ----------------------------------------------------------------------------------------------


def cmd_worker(args: argparse.Namespace) -> int:
    from workers.library_hooks import LibraryHooksMissing, check

    try:
        check()  # before anything starts: a dependency outside its pinned series is refused in one line
    except LibraryHooksMissing as err:
        raise CommandFailed(str(err), EXIT_USAGE) from None
    from activities.internal_messages import InternalKeyError, internal_key
    from workers.main import run_worker_from_env
    from workers.settings import SettingsError, WorkerSettings

    try:
        # LOBSTACK_ENV=production without LOBSTACK_BUILD_ID, among others: refused before anything is contacted.
        settings = WorkerSettings.from_env()
        internal_key(required=settings.environment == "production")
    except (SettingsError, InternalKeyError) as err:
        raise CommandFailed(str(err), EXIT_USAGE) from None
    vault_settings()  # refused here, one line and status 2, rather than as the worker's first traceback
    return _run(run_worker_from_env(*temporal_target(args), settings, task_queue=args.task_queue))


def cmd_dev(args: argparse.Namespace) -> int:
    from devstack.dev import run_dev

    return _run(
        run_dev(
            show_root_token=args.show_root_token,
            temporal_port=args.temporal_port,
            ui_port=args.ui_port,
            vault_port=args.vault_port,
            gateway_port=args.gateway_port,
        )
    )


def cmd_gateway(args: argparse.Namespace) -> int:
    from gateway import run_gateway
    from workers.redaction import configure_logging

    configure_logging()

    async def go() -> int:
        stop = asyncio.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            asyncio.get_running_loop().add_signal_handler(sig, stop.set)
        await run_gateway(args.host, args.port, stop=stop)
        return 0

    return _run(go())


def cmd_codec_server(args: argparse.Namespace) -> int:
    from workers.codec_server import CodecServerConfigError, run_codec_server_from_env
    from workers.redaction import configure_logging

    configure_logging()

    async def go() -> int:
        stop = asyncio.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            asyncio.get_running_loop().add_signal_handler(sig, stop.set)
        try:
            await run_codec_server_from_env(args.host, args.port, stop=stop)
        except CodecServerConfigError as err:
            raise CommandFailed(str(err), EXIT_USAGE) from None
        return 0

    return _run(go())


def cmd_cloudsim(args: argparse.Namespace) -> int:
    from cloudsim.__main__ import main as cloudsim_main

    return int(cloudsim_main(args.sim_args) or 0)


def cmd_demo(args: argparse.Namespace) -> int:
    validate_spec(AgentSpec(account_id="demo", name="demo", provider=args.provider))
    from clients.demo import run_demo

    return _run(run_demo(provider=args.provider, pool=args.pool))


# --- parser --------------------------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="lobstack",
        description="Give every AI agent its own VM, durably.",
        epilog=EXIT_STATUS_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--address", help="Temporal frontend host:port (env TEMPORAL_ADDRESS, default 127.0.0.1:7233)")
    parser.add_argument("--namespace", help="Temporal namespace (env TEMPORAL_NAMESPACE, default 'default')")
    parser.add_argument(
        "--identity",
        help="what Temporal records as the sender of your decisions (env TEMPORAL_IDENTITY, default pid@host)",
    )
    parser.add_argument(
        "--task-queue",
        default=os.environ.get("LOBSTACK_TASK_QUEUE", WORKFLOW_QUEUE),
        help=f"workflow task queue (env LOBSTACK_TASK_QUEUE, default {WORKFLOW_QUEUE!r})",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    dev = sub.add_parser("dev", help="run Temporal (with Web UI), OpenBao and a worker locally; Ctrl-C stops all")
    dev.add_argument("--show-root-token", action="store_true", help="print the OpenBao root token")
    dev.add_argument("--temporal-port", type=int, default=7233, help="Temporal frontend port (default 7233)")
    dev.add_argument("--ui-port", type=int, default=8233, help="Temporal Web UI port (default 8233)")
    dev.add_argument("--vault-port", type=int, default=8200, help="OpenBao port (default 8200)")
    dev.add_argument("--gateway-port", type=int, default=8788, help="agent gateway port (default 8788)")
    dev.set_defaults(func=cmd_dev)

    worker = sub.add_parser(
        "worker",
        help="run a worker (TEMPORAL_ADDRESS, VAULT_ADDR, VAULT_TOKEN, DATABASE_URL; LOBSTACK_ENV, LOBSTACK_BUILD_ID, "
        "LOBSTACK_DEPLOYMENT_NAME, LOBSTACK_VERSIONING: docs/upgrades.md)",
    )
    worker.set_defaults(func=cmd_worker)

    demo = sub.add_parser("demo", help="run a whole lifecycle end to end on the embedded defaults")
    demo.add_argument("--provider", default="local", help=f"one of: {', '.join(PROVIDERS)}")
    demo.add_argument(
        "--pool", action="store_true", help="claim the agent's VM from a warm pool (hetzner unless --provider vultr)"
    )
    demo.set_defaults(func=cmd_demo)

    gw = sub.add_parser("gateway", help="serve the agent gateway (VAULT_ADDR, TEMPORAL_ADDRESS, LOBSTACK_* settings)")
    gw.add_argument("--host", help="listen address (env LOBSTACK_GATEWAY_HOST, default 127.0.0.1)")
    gw.add_argument("--port", type=int, help="listen port (env LOBSTACK_GATEWAY_PORT, default 8788)")
    gw.set_defaults(func=cmd_gateway)

    codec = sub.add_parser(
        "codec-server", help="decrypt payloads for the Temporal Web UI (LOBSTACK_CODEC_KEYS*, LOBSTACK_CODEC_TOKENS)"
    )
    codec.add_argument("--host", default="127.0.0.1", help="listen address (default 127.0.0.1)")
    codec.add_argument("--port", type=int, default=8081, help="listen port (default 8081)")
    codec.set_defaults(func=cmd_codec_server)

    sim = sub.add_parser("cloudsim", help="serve the Hetzner, DigitalOcean and Vultr APIs locally (development only)")
    sim.add_argument("sim_args", nargs=argparse.REMAINDER, help="arguments for python -m cloudsim (see --help)")
    sim.set_defaults(func=cmd_cloudsim)

    agent = sub.add_parser("agent", help="create, inspect, approve and destroy agents")
    agent_sub = agent.add_subparsers(dest="agent_command", required=True)

    create = agent_sub.add_parser("create", help="start an agent's lifecycle")
    create.add_argument("--account", required=True, help="account id")
    create.add_argument("--name", required=True, help="agent name (DNS label)")
    create.add_argument("--provider", default="local", help=f"one of: {', '.join(PROVIDERS)}")
    create.add_argument("--region", default="eu-central", help=f"one of: {', '.join(REGIONS)}")
    create.add_argument("--size", default="small", help=f"one of: {', '.join(SIZES)}")
    create.add_argument("--skill", action="append", help="a skill to enable (repeatable)")
    create.add_argument("--require-approval", action="store_true", help="hold provisioning for a human approval")
    create.add_argument(
        "--strict-region", action="store_true", help="data residency: refuse a provider's nearest substitute location"
    )
    create.add_argument("--agent-id", help="choose the agent id (default: <name>-<random>)")
    create.add_argument(
        "--approver", action="append", help="who may approve it, narrowing the account's approvers (repeatable)"
    )
    create.add_argument("--requested-by", default="", help="who asks for it (default: the Temporal identity)")
    create.add_argument(
        "--approval-timeout",
        type=_seconds("approval_timeout_s"),
        default=DEFAULT_APPROVAL_TIMEOUT_S,
        help="seconds to wait for a decision before rejecting (default 86400)",
    )
    create.add_argument(
        "--health-timeout",
        type=_seconds("health_timeout_s"),
        default=DEFAULT_HEALTH_TIMEOUT_S,
        help="seconds to wait for the agent to become healthy (default 300)",
    )
    create.add_argument(
        "--max-lifetime",
        metavar="DURATION",
        help="destroy it this long after it first runs (90s, 15m, 2h, 3d; default: the account's, `lobstack limits`)",
    )
    create.add_argument(
        "--idle-timeout",
        metavar="DURATION",
        help="destroy it after this long without an agent API request (default: the account's)",
    )
    create.add_argument("--wait", action="store_true", help="wait until running or pending approval")
    create.add_argument(
        "--wait-timeout",
        type=_seconds("wait_timeout_s", low=1),
        help="with --wait: give up after this many seconds, exit 3 (default: health timeout + 120)",
    )
    create.set_defaults(func=cmd_agent_create)

    status = agent_sub.add_parser("status", help="show an agent's state")
    status.add_argument("agent_id")
    status.add_argument("--json", action="store_true")
    status.add_argument(
        "--timeout",
        type=_seconds("timeout_s", low=1),
        help="give up after this many seconds when no worker answers, exit 3 (default: the Temporal server's limit)",
    )
    status.set_defaults(func=cmd_agent_status)

    listing = agent_sub.add_parser("list", help="list agents known to Temporal")
    listing.add_argument("--running", action="store_true", help="only lifecycles still open")
    listing.set_defaults(func=cmd_agent_list)

    for verb, approve in (("approve", True), ("reject", False)):
        decide = agent_sub.add_parser(verb, help=f"{verb} an agent waiting for approval")
        decide.add_argument("agent_id")
        decide.add_argument("--approver", required=True, help="who decides")
        decide.add_argument("--reason", default="", help="why")
        decide.set_defaults(func=_decision_command(approve))

    skills = agent_sub.add_parser("skills", help="replace an agent's enabled skills (the bridge picks them up)")
    skills.add_argument("agent_id")
    skills.add_argument("--skill", action="append", help="a skill to enable (repeatable; none disables all)")
    skills.add_argument("--approval-required", action="append", help="a tool pattern that needs approval (repeatable)")
    skills.add_argument("--requested-by", default="", help="who asks")
    skills.set_defaults(func=cmd_agent_skills)

    destroy = agent_sub.add_parser("destroy", help="destroy an agent: VM, secrets and tokens")
    destroy.add_argument("agent_id")
    destroy.add_argument("--requested-by", default="", help="who asks")
    destroy.add_argument("--reason", default="", help="why")
    destroy.add_argument("--wait", action="store_true", help="wait until everything is gone")
    destroy.add_argument(
        "--wait-timeout",
        type=_seconds("wait_timeout_s", low=1),
        default=DEFAULT_DESTROY_WAIT_S,
        help=f"with --wait: give up after this many seconds, exit 3 (default {DEFAULT_DESTROY_WAIT_S})",
    )
    destroy.set_defaults(func=cmd_agent_destroy)
    add_ops_commands(sub)
    add_catalog_commands(sub)
    add_audit_commands(sub)
    add_approvers_commands(sub)
    add_limits_commands(sub)
    add_pool_commands(sub)
    add_db_commands(sub)
    add_webhook_commands(sub)

    approvals = sub.add_parser("approvals", help="list agent and tool approvals; decide tool approvals")
    approvals_sub = approvals.add_subparsers(dest="approvals_command", required=True)
    listing = approvals_sub.add_parser("list", help=f"agent and tool approvals waiting for a decision ({PENDING})")
    listing.add_argument("--all", action="store_true", help="include decided ones")
    listing.set_defaults(func=cmd_approvals_list)
    for verb, approved in (("approve", True), ("reject", False)):
        decide = approvals_sub.add_parser(verb, help=f"{verb} a tool request (refused unless you are an approver)")
        decide.add_argument("approval_id")
        decide.add_argument("--approver", required=True, help="who decides")
        decide.add_argument("--reason", default="", help="why")
        decide.set_defaults(func=_approval_command(approved))
    return parser


def _seconds(field_name: str, *, low: int | None = None) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{field_name}: {text!r} is not a whole number of seconds") from None
        if low is not None and value < low:
            raise argparse.ArgumentTypeError(f"{field_name}: {value} is not allowed; must be at least {low}")
        return value

    return parse


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; every failure is one line on stderr and a documented exit status (EXIT_STATUS_HELP)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except Exception as err:
        return report(err, args)


def run() -> None:
    """Console entry point.

    Exits with os._exit after flushing: the Temporal SDK's Rust threads can still be winding down while CPython
    finalizes, which aborts the process ("PyGILState_Release ... finalizing", temporalio/sdk-python#300) after all
    the work is done. Skipping interpreter teardown is safe here: every file and stream is flushed first.
    """
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    run()
