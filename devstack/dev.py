"""`lobstack dev`: the development stack on fixed ports, with the schedules, until Ctrl-C."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path

from activities.cloud.budget import ApiBudget
from connection.codec import encode_keyring_spec
from contracts.regions import CLOUD_PROVIDERS
from devstack.errors import PortInUse
from devstack.files import private_dir, write_private
from devstack.stack import DevStack, StackOptions, dev_stack
from workers.redaction import configure_logging
from workers.settings import Versioning

__all__ = ["run_dev"]


async def run_dev(
    *,
    show_root_token: bool = False,
    temporal_port: int = 7233,
    ui_port: int = 8233,
    vault_port: int = 8200,
    codec: bool = False,
    codec_port: int = 8234,
    codec_anonymous: bool = False,
    gateway_port: int = 8788,
) -> int:
    """`lobstack dev`. `codec` stays off by default until the CLI reads the key file this writes
    (LOBSTACK_CODEC_KEYS_FILE): a CLI without the key cannot read an encrypted stack's statuses.

    The clouds' API budgets are a worker's: LOBSTACK_API_BUDGET_<PROVIDER>, read here once, as a worker does."""
    configure_logging()
    try:
        budgets: dict[str, float] = {p: ApiBudget.for_provider(p, os.environ).calls_per_s for p in CLOUD_PROVIDERS}
        versioning = dev_versioning(os.environ)
    except ValueError as bad:  # a budget, or a SettingsError naming its variable
        print(f"lobstack dev: {bad}", file=sys.stderr)
        return 2
    home = Path(os.environ.get("LOBSTACK_DEV_HOME", Path(tempfile.gettempdir()) / "lobstack-dev"))
    shutil.rmtree(home, ignore_errors=True)
    private_dir(home)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    options = StackOptions(
        temporal_port=temporal_port,
        ui_port=ui_port,
        vault_port=vault_port,
        codec=codec,
        codec_port=codec_port,
        codec_anonymous=codec_anonymous,
        gateway_port=gateway_port,
        api_budgets=budgets,
        schedules=True,
        versioning=versioning,
    )
    try:
        async with dev_stack(home, options) as stack:
            _show(stack, home, show_root_token=show_root_token)
            await stop.wait()
    except PortInUse as taken:
        # A port given here (or its default) is in use: say which flag moves it. Ports picked here are retried.
        flags = {
            temporal_port: "--temporal-port",
            ui_port: "--ui-port",
            vault_port: "--vault-port",
            vault_port + 1: "--vault-port",  # OpenBao's cluster listener
        }
        hint = f"; choose another with {flags[taken.port]} (0 picks a free one)" if taken.port in flags else ""
        print(f"lobstack dev: {taken}{hint}", file=sys.stderr)
        return 1
    print("stopped: worker, Temporal, OpenBao and every local agent")
    return 0


def dev_versioning(env: Mapping[str, str]) -> Versioning:
    """Worker Versioning as production runs it, on by default: deployment LOBSTACK_DEPLOYMENT_NAME (default
    `lobstack`), build id LOBSTACK_BUILD_ID (default `dev`); LOBSTACK_VERSIONING=off runs the worker unversioned."""
    chosen = {
        **env,
        "LOBSTACK_VERSIONING": env.get("LOBSTACK_VERSIONING", "").strip() or "on",
        "LOBSTACK_BUILD_ID": env.get("LOBSTACK_BUILD_ID", "").strip() or "dev",
    }
    return Versioning.from_env(chosen, "development")


def _show(stack: DevStack, home: Path, *, show_root_token: bool) -> None:
    # Files readable by this user only (0600 from their creation); the key and tokens themselves are never printed.
    token_file = write_private(home / "openbao-root-token", stack.openbao.root_token)
    if stack.codec_key is not None:
        keys_file = write_private(home / "codec-keys", encode_keyring_spec([stack.codec_key]))
        codec_token_file = write_private(home / "codec-token", stack.codec_token)
        print(f"Codec server    : {stack.codec_url} (bearer token in {codec_token_file}; the Web UI uses it)")
        print(f"Payload keys    : in {keys_file} (export LOBSTACK_CODEC_KEYS_FILE={keys_file} for the CLI)")
    print(f"Temporal Web UI : {stack.temporal.ui_url}")
    print(f"Temporal        : {stack.temporal.address}")
    print(f"OpenBao         : {stack.openbao.addr} (root token in {token_file})")
    if show_root_token:
        print(f"OpenBao token   : {stack.openbao.root_token}")
    print(f"Registry        : {stack.database_url}")
    print(f"Cloud simulator : {stack.cloudsim.url} (Hetzner, DigitalOcean and Vultr APIs)")
    print(f"Agent gateway   : {stack.gateway_url} (bridges ask it for skills and tool approvals)")
    print("Schedules       : KeyRotation (90 days), OrphanSweep (hourly), FleetHealth (30 s), in the Web UI")
    print(f"Worker          : running, {_version_line(stack)}; try in another shell:")
    print("  lobstack approvers add --account acme alice")
    print("  lobstack agent create --account acme --name helper --require-approval --wait")
    print("Ctrl-C stops everything.", flush=True)


def _version_line(stack: DevStack) -> str:
    versioning = stack.versioning
    if not versioning.enabled:
        return "unversioned"
    return f"Worker Deployment {versioning.deployment_name} build id {versioning.build_id} (current)"
