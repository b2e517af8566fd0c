"""`lobstack dev` and the demo's stack: Temporal with its Web UI, OpenBao, cloudsim, a SQLite registry and a worker.

Everything is ephemeral (in-memory servers, a scratch home) and stopped together, local agent processes included, so
a stack never leaves anything running behind it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import shutil
import signal
import sys
import tempfile
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from temporalio.client import Client
from temporalio.converter import DataConverter

from activities.cloud.base import CloudProvider
from activities.cloud.local import LocalProvider
from activities.secrets import AgentVault, VaultSettings
from cloudsim.testing import RunningSim, start_cloudsim
from connection.codec import CodecKey, Keyring, data_converter, encode_keyring_spec
from contracts.queues import WORKFLOW_QUEUE
from contracts.regions import CLOUD_PROVIDERS
from gateway import GatewaySettings
from gateway import serving as serving_gateway
from workers import codec_server, devstack
from workers.main import build_services
from workers.redaction import configure_logging
from workers.schedules import install_schedules
from workers.settings import WorkerSettings
from workers.worker import default_providers, running_workers

log = logging.getLogger("lobstack.dev")


@dataclass
class DevStack:
    home: Path
    temporal: devstack.TemporalDev
    openbao: devstack.OpenBaoDev
    client: Client
    vault: AgentVault
    local: LocalProvider
    database_url: str
    cloudsim: RunningSim
    providers: dict[str, CloudProvider]
    # Payload encryption (connection/codec.py); empty/None when the stack runs without a codec.
    codec_url: str = ""
    codec_token: str = field(default="", repr=False)
    codec_key: CodecKey | None = None
    gateway_url: str = ""

    def vms_of(self, agent_id: str) -> int:
        """VMs of the agent on every provider this stack serves."""
        return sum(1 for provider in self.providers.values() if provider.find(agent_id) is not None)


@contextlib.asynccontextmanager
async def dev_stack(
    home: Path,
    *,
    temporal_port: int | None = None,
    ui_port: int | None = None,
    vault_port: int | None = None,
    boot_latency_s: float = 0.5,
    codec: bool = True,
    codec_port: int | None = None,
    codec_anonymous: bool = False,
    gateway_port: int | None = None,
    schedules: bool = False,
    pick_port: Callable[[], int] = devstack.free_port,
) -> AsyncIterator[DevStack]:
    """`schedules`: install KeyRotation, OrphanSweep and FleetHealth (as `lobstack dev` does).

    A port that is None (or 0) is picked here (`pick_port` for the Web UI's; the starters pick the others) and
    picked again if another process takes it before its server listens (workers/devstack.py).

    `codec`: encrypt every payload with an ephemeral key (held in memory only) and run a codec server for the Web
    UI, which needs a bearer token (`DevStack.codec_token`) unless `codec_anonymous` (loopback only): the dev UI has
    no login to take a token from."""
    # Logs (OpenBao's holds its root token) and state (local agents' bootstrap files) for this user only.
    logs = devstack.private_dir(devstack.private_dir(home) / "logs")
    key = CodecKey.generate(f"dev-{secrets.token_hex(4)}") if codec else None
    token = secrets.token_urlsafe(32) if codec else ""
    for attempt in range(1, devstack.START_ATTEMPTS + 1):
        # The codec server starts first (the Temporal UI is told its URL at start) and must know the UI's port for
        # CORS: a UI port picked here and lost to another process means both start again on a new one.
        chosen_ui = ui_port or pick_port()
        serve_codec: contextlib.AbstractAsyncContextManager[str] = contextlib.nullcontext("")
        if key is not None:
            serve_codec = codec_server.serving(
                Keyring([key]),
                port=codec_port or 0,
                auth_token=token,
                allow_anonymous=codec_anonymous,
                cors_origins=[f"http://127.0.0.1:{chosen_ui}", f"http://localhost:{chosen_ui}"],
            )
        started = False
        try:
            async with (
                serve_codec as codec_url,
                _dev_stack(
                    home,
                    logs,
                    temporal_port,
                    chosen_ui,
                    vault_port,
                    boot_latency_s,
                    key,
                    codec_url,
                    gateway_port,
                    schedules,
                ) as stack,
            ):
                started = True
                stack.codec_token = token
                yield stack
            return
        except devstack.PortInUse as lost:
            if started or ui_port or lost.port != chosen_ui or attempt == devstack.START_ATTEMPTS:
                raise
            log.info("Web UI port %s was taken by another process; starting again", chosen_ui)


@contextlib.asynccontextmanager
async def _dev_stack(
    home: Path,
    logs: Path,
    temporal_port: int | None,
    ui_port: int,
    vault_port: int | None,
    boot_latency_s: float,
    key: CodecKey | None,
    codec_url: str,
    gateway_port: int | None,
    schedules: bool,
) -> AsyncIterator[DevStack]:
    # The starters block while they wait for readiness: keep them off the event loop.
    temporal = await asyncio.to_thread(
        devstack.start_temporal, logs, port=temporal_port, ui_port=ui_port, ui_codec_endpoint=codec_url or None
    )
    openbao = None
    sim = None
    local = LocalProvider(state_dir=devstack.private_dir(home / "local-vms"))
    try:
        sim_dir = devstack.private_dir(home / "cloudsim")
        # cloudsim appends to this log (simulated VMs' bridges write beside it): made 0600 before it opens it.
        os.close(devstack.open_private(sim_dir / "cloudsim.log"))
        sim = await asyncio.to_thread(start_cloudsim, sim_dir, boot_latency_s=boot_latency_s)
        providers: dict[str, CloudProvider] = {"local": local}
        settings = WorkerSettings(home=home, providers=("local", *CLOUD_PROVIDERS))
        # cloudsim's endpoints and tokens, plus any API budget override (LOBSTACK_API_BUDGET_*) set by the caller.
        budgets = {k: v for k, v in os.environ.items() if k.startswith("LOBSTACK_API_BUDGET_")}
        providers.update(default_providers(replace(settings, providers=CLOUD_PROVIDERS), {**budgets, **sim.env()}))
        openbao = await asyncio.to_thread(devstack.start_openbao, logs, port=vault_port)
        # The operator step, as in a deployment: mounts, policies, and no user lockout on the agents' AppRole mount.
        await asyncio.to_thread(devstack.bootstrap_openbao, openbao.addr, openbao.root_token)
        vault_settings = VaultSettings(addr=openbao.addr, token=openbao.root_token)
        vault = AgentVault(vault_settings)
        await asyncio.to_thread(vault.ensure_engines)
        database_url = f"sqlite:///{home / 'lobstack.db'}"
        converter = data_converter(Keyring([key])) if key is not None else None
        client = await Client.connect(temporal.address, data_converter=converter or DataConverter.default)
        gateway_settings = GatewaySettings(
            temporal=client, vault_addr=openbao.addr, listen_port=gateway_port or 0, default_approvers=("admin",)
        )
        async with serving_gateway(gateway_settings) as gateway_url:
            services = build_services(
                vault_settings=vault_settings,
                database_url=database_url,
                worker_settings=replace(settings, gateway_url=gateway_url),
                providers=providers,
            )
            async with running_workers(client, services):
                if schedules:
                    await install_schedules(client, task_queue=WORKFLOW_QUEUE)
                yield DevStack(
                    home,
                    temporal,
                    openbao,
                    client,
                    vault,
                    local,
                    database_url,
                    sim,
                    providers,
                    codec_url=codec_url,
                    codec_key=key,
                    gateway_url=gateway_url,
                )
    finally:
        # Agents outlive workers by design; a dev stack owns its agents, so they go with it.
        for vm in local.list_managed():
            with contextlib.suppress(Exception):
                local.delete(vm.vm_id)
        if sim is not None:
            sim.stop()  # stops every simulated VM's bridge with it
        if openbao is not None:
            openbao.stop()
        temporal.stop()


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
    (LOBSTACK_CODEC_KEYS_FILE): a CLI without the key cannot read an encrypted stack's statuses."""
    configure_logging()
    home = Path(os.environ.get("LOBSTACK_DEV_HOME", Path(tempfile.gettempdir()) / "lobstack-dev"))
    shutil.rmtree(home, ignore_errors=True)
    devstack.private_dir(home)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        async with dev_stack(
            home,
            temporal_port=temporal_port,
            ui_port=ui_port,
            vault_port=vault_port,
            codec=codec,
            codec_port=codec_port,
            codec_anonymous=codec_anonymous,
            gateway_port=gateway_port,
            schedules=True,
        ) as stack:
            _show(stack, home, show_root_token=show_root_token)
            await stop.wait()
    except devstack.PortInUse as taken:
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


def _show(stack: DevStack, home: Path, *, show_root_token: bool) -> None:
    # Files readable by this user only (0600 from their creation); the key and tokens themselves are never printed.
    token_file = devstack.write_private(home / "openbao-root-token", stack.openbao.root_token)
    if stack.codec_key is not None:
        keys_file = devstack.write_private(home / "codec-keys", encode_keyring_spec([stack.codec_key]))
        codec_token_file = devstack.write_private(home / "codec-token", stack.codec_token)
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
    print("Worker          : running; try in another shell:")
    print("  lobstack agent create --account acme --name helper --require-approval --wait")
    print("Ctrl-C stops everything.", flush=True)
