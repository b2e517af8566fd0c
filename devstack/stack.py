"""The one development stack: Temporal with its Web UI, OpenBao, cloudsim, a registry, the agent gateway and a worker.

Every stack that runs the whole service outside production is built here, with `StackOptions` saying what differs:
`lobstack dev` and `make demo` (devstack/dev.py, clients/demo.py), the benches (bench/_common.py) and `make chaos`
(chaos/stack.py: restartable OpenBao, Temporal state in a file, the worker as its own process). The tests share
the same servers and starters (devstack/servers.py) through their session fixtures (tests/conftest.py).

Everything is stopped together, local agent processes included, so a stack never leaves anything running behind it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

from temporalio.client import Client
from temporalio.converter import DataConverter

from activities.cloud.base import CloudProvider
from activities.cloud.boot_time import boot_env_var
from activities.cloud.local import LocalProvider
from activities.secrets import AgentVault, VaultSettings
from cloudsim.testing import RunningSim
from connection.codec import CodecKey, Keyring, data_converter, encode_keyring_spec
from contracts.queues import WORKFLOW_QUEUE
from contracts.regions import CLOUD_PROVIDERS
from devstack.errors import PortInUse
from devstack.files import private_dir, write_private
from devstack.ports import START_ATTEMPTS, free_port
from devstack.servers import (
    OpenBaoDev,
    OpenBaoServer,
    TemporalDev,
    bootstrap_openbao,
    start_openbao,
    start_openbao_server,
    start_simulator,
    start_temporal,
)
from devstack.worker import WorkerProcess
from gateway import GatewaySettings
from gateway import serving as serving_gateway
from store.schema import upgrade_database
from workers import codec_server
from workers.main import build_services
from workers.schedules import install_schedules
from workers.settings import Versioning, WorkerSettings
from workers.versioning import set_current_version
from workers.worker import default_providers, running_workers

__all__ = ["DevStack", "StackOptions", "WorkerMode", "dev_stack"]

log = logging.getLogger("lobstack.dev")

# "in-process": the worker runs on this event loop; "process": `lobstack worker` in its own process, configured from
# the environment as in production, so it can be killed like a crash (DevStack.worker).
WorkerMode = Literal["in-process", "process"]


@dataclass(frozen=True)
class StackOptions:
    """What a stack runs. A port that is None (or 0) is picked by the stack, and picked again if another process
    takes it before its server listens (devstack/ports.py)."""

    # The providers the worker serves; the three clouds are cloudsim's.
    providers: tuple[str, ...] = ("local", *CLOUD_PROVIDERS)
    worker: WorkerMode = "in-process"
    # The registry; None: a SQLite file in the stack's home.
    database_url: str | None = None
    # Calls per second per cloud; a cloud not named keeps its documented budget (activities/cloud/budget.py).
    api_budgets: Mapping[str, float] = field(default_factory=dict)
    # cloudsim: seconds from create to running, the seed of its fault rolls, and limits replacing its documented ones.
    boot_latency_s: float = 0.5
    sim_seed: int | None = None
    sim_rate_limits: Mapping[str, Mapping[str, object]] = field(default_factory=dict)
    temporal_port: int | None = None
    ui_port: int | None = None
    # Temporal's state in this file rather than in memory, so a restarted worker finds its workflows.
    temporal_state: Path | None = None
    vault_port: int | None = None
    # OpenBao on Raft storage, which a restart keeps (DevStack.openbao.restart()), instead of the in-memory dev server.
    restartable_vault: bool = False
    # Encrypt every payload with an ephemeral key (in memory, and in a 0600 file for a worker process) and run a codec
    # server for the Web UI, which needs a bearer token (DevStack.codec_token) unless `codec_anonymous` (loopback
    # only): the dev UI has no login to take a token from.
    codec: bool = True
    codec_port: int | None = None
    codec_anonymous: bool = False
    gateway_port: int | None = None
    # Who may decide tool approvals for an account that configured no approvers of its own.
    approvers: tuple[str, ...] = ("admin",)
    # Install KeyRotation, OrphanSweep and FleetHealth (as `lobstack dev` does).
    schedules: bool = False
    # The worker's Worker Deployment Version; enabled, it is made the deployment's current version once the worker
    # polls, so new workflows start on it (as `lobstack dev` does; docs/upgrades.md).
    versioning: Versioning = field(default_factory=Versioning)


@dataclass
class DevStack:
    home: Path
    temporal: TemporalDev
    openbao: OpenBaoDev | OpenBaoServer
    client: Client
    vault: AgentVault
    local: LocalProvider
    database_url: str
    cloudsim: RunningSim
    providers: dict[str, CloudProvider]
    # Payload encryption (workers/codec.py); empty/None when the stack runs without a codec.
    codec_url: str = ""
    codec_token: str = field(default="", repr=False)
    codec_key: CodecKey | None = None
    gateway_url: str = ""
    # The worker's own process (StackOptions.worker == "process"); None when it runs in this one.
    worker: WorkerProcess | None = None
    versioning: Versioning = field(default_factory=Versioning)

    def vms_of(self, agent_id: str) -> int:
        """VMs of the agent on every provider this stack serves."""
        return sum(1 for provider in self.providers.values() if provider.find(agent_id) is not None)


def budget_env(api_budgets: Mapping[str, float]) -> dict[str, str]:
    """The budgets as a worker reads them from its environment (LOBSTACK_API_BUDGET_<PROVIDER>)."""
    return {f"LOBSTACK_API_BUDGET_{provider.upper()}": str(rate) for provider, rate in api_budgets.items()}


def boot_env(vm_boot_s: Mapping[str, float]) -> dict[str, str]:
    """The typical boot times as a worker reads them from its environment (LOBSTACK_VM_BOOT_S_<PROVIDER>)."""
    return {boot_env_var(provider): str(seconds) for provider, seconds in vm_boot_s.items()}


@contextlib.asynccontextmanager
async def dev_stack(
    home: Path, options: StackOptions | None = None, *, pick_port: Callable[[], int] = free_port
) -> AsyncIterator[DevStack]:
    """Start the stack `options` describe under `home`; everything stops when the block ends.

    `pick_port` picks the Web UI's port when the options give none (the starters pick the others)."""
    opts = options or StackOptions()
    # Logs (OpenBao's holds its root token) and state (local agents' bootstrap files) for this user only.
    logs = private_dir(private_dir(home) / "logs")
    key = CodecKey.generate(f"dev-{secrets.token_hex(4)}") if opts.codec else None
    token = secrets.token_urlsafe(32) if opts.codec else ""
    for attempt in range(1, START_ATTEMPTS + 1):
        # The codec server starts first (the Temporal UI is told its URL at start) and must know the UI's port for
        # CORS: a UI port picked here and lost to another process means both start again on a new one.
        chosen_ui = opts.ui_port or pick_port()
        serve_codec: contextlib.AbstractAsyncContextManager[str] = contextlib.nullcontext("")
        if key is not None:
            serve_codec = codec_server.serving(
                Keyring([key]),
                port=opts.codec_port or 0,
                auth_token=token,
                allow_anonymous=opts.codec_anonymous,
                cors_origins=[f"http://127.0.0.1:{chosen_ui}", f"http://localhost:{chosen_ui}"],
            )
        started = False
        try:
            async with serve_codec as codec_url, _started(home, logs, opts, chosen_ui, key, codec_url) as stack:
                started = True
                stack.codec_token = token
                yield stack
            return
        except PortInUse as lost:
            if started or opts.ui_port or lost.port != chosen_ui or attempt == START_ATTEMPTS:
                raise
            log.info("Web UI port %s was taken by another process; starting again", chosen_ui)


@contextlib.asynccontextmanager
async def _started(
    home: Path, logs: Path, opts: StackOptions, ui_port: int, key: CodecKey | None, codec_url: str
) -> AsyncIterator[DevStack]:
    # The starters block while they wait for readiness: keep them off the event loop.
    temporal = await asyncio.to_thread(
        start_temporal,
        logs,
        port=opts.temporal_port,
        ui_port=ui_port,
        db_file=opts.temporal_state,
        ui_codec_endpoint=codec_url or None,
    )
    openbao: OpenBaoDev | OpenBaoServer | None = None
    sim = None
    worker = None
    local = LocalProvider(state_dir=private_dir(home / "local-vms"))
    try:
        sim = await asyncio.to_thread(
            start_simulator,
            home / "cloudsim",
            boot_latency_s=opts.boot_latency_s,
            seed=opts.sim_seed,
            rate_limits=opts.sim_rate_limits,
        )
        clouds = tuple(p for p in opts.providers if p != "local")
        # The first status look of a booting VM waits for cloudsim's boot latency, as it would for the provider's.
        boot_s = {p: opts.boot_latency_s for p in clouds}
        settings = WorkerSettings(home=home, providers=opts.providers, versioning=opts.versioning, vm_boot_s=boot_s)
        # Built here whichever way the worker runs: the stack reads the providers' VMs through them (vms_of).
        providers: dict[str, CloudProvider] = {"local": local} if "local" in opts.providers else {}
        cloud_env = {**budget_env(opts.api_budgets), **boot_env(boot_s), **sim.env()}
        providers.update(default_providers(WorkerSettings(home=home, providers=clouds), cloud_env))
        if opts.restartable_vault:
            openbao = await asyncio.to_thread(start_openbao_server, logs, port=opts.vault_port)
        else:
            openbao = await asyncio.to_thread(start_openbao, logs, port=opts.vault_port)
        # The operator step, as in a deployment: mounts, policies, and no user lockout on the agents' AppRole mount.
        await asyncio.to_thread(bootstrap_openbao, openbao.addr, openbao.root_token)
        vault_settings = VaultSettings(addr=openbao.addr, token=openbao.root_token)
        vault = AgentVault(vault_settings)
        await asyncio.to_thread(vault.ensure_engines)
        database_url = opts.database_url or f"sqlite:///{home / 'lobstack.db'}"
        # What an operator runs before starting workers: the worker refuses a database behind its code.
        await asyncio.to_thread(upgrade_database, database_url)
        converter = data_converter(Keyring([key])) if key is not None else None
        client = await Client.connect(temporal.address, data_converter=converter or DataConverter.default)
        gateway_settings = GatewaySettings(
            temporal=client,
            vault_addr=openbao.addr,
            listen_port=opts.gateway_port or 0,
            default_approvers=opts.approvers,
        )
        async with contextlib.AsyncExitStack() as running:
            gateway_url = await running.enter_async_context(serving_gateway(gateway_settings))
            if opts.worker == "in-process":
                services = build_services(
                    vault_settings=vault_settings,
                    database_url=database_url,
                    worker_settings=replace(settings, gateway_url=gateway_url),
                    providers=providers,
                )
                # Approval notices link to this stack's Web UI unless LOBSTACK_UI_URL names another.
                services.ui_url = os.environ.get("LOBSTACK_UI_URL") or temporal.ui_url
                deployment = settings.versioning.deployment_config()
                await running.enter_async_context(running_workers(client, services, deployment=deployment))
            else:
                env = {
                    **os.environ,
                    **cloud_env,
                    "TEMPORAL_ADDRESS": temporal.address,
                    "VAULT_ADDR": openbao.addr,
                    "VAULT_TOKEN": openbao.root_token,
                    "DATABASE_URL": database_url,
                    "LOBSTACK_HOME": str(settings.home),
                    "LOBSTACK_PROVIDERS": ",".join(settings.providers),
                    "LOBSTACK_GATEWAY_URL": gateway_url,
                    "LOBSTACK_UI_URL": os.environ.get("LOBSTACK_UI_URL") or temporal.ui_url,
                    # Set whatever the caller's shell holds: the stack's version is the options'.
                    "LOBSTACK_ENV": "development",
                    "LOBSTACK_DEPLOYMENT_NAME": settings.versioning.deployment_name,
                    "LOBSTACK_BUILD_ID": settings.versioning.build_id,
                    "LOBSTACK_VERSIONING": "on" if settings.versioning.enabled else "off",
                    # One seal key for the stack's life: a restarted worker still accepts the health signals the
                    # one it replaced sealed (activities/internal_messages.py).
                    "LOBSTACK_INTERNAL_KEY": secrets.token_urlsafe(32),
                }
                if key is not None:
                    keys_file = write_private(home / "codec-keys", encode_keyring_spec([key]))
                    env["LOBSTACK_CODEC_KEYS_FILE"] = str(keys_file)
                worker = WorkerProcess(env, logs)
                worker.start()
                await worker.started()
            version = settings.versioning.version
            if settings.versioning.enabled and version is not None:
                await set_current_version(client, version, identity="lobstack dev")
            if opts.schedules:
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
                worker=worker,
                versioning=settings.versioning,
            )
    finally:
        if worker is not None:
            worker.stop()
        # Agents outlive workers by design; a dev stack owns its agents, so they go with it.
        for vm in local.list_managed():
            with contextlib.suppress(Exception):
                local.delete(vm.vm_id)
        if sim is not None:
            sim.stop()  # stops every simulated VM's bridge with it
        if openbao is not None:
            openbao.stop()
        temporal.stop()
