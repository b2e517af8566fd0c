"""`lobstack dev` and the demo's stack: Temporal with its Web UI, OpenBao, cloudsim, a SQLite registry and a worker.

Everything is ephemeral (in-memory servers, a scratch home) and stopped together, local agent processes included, so
a stack never leaves anything running behind it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import signal
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from pathlib import Path

from temporalio.client import Client

from activities.cloud.base import CloudProvider
from activities.cloud.local import LocalProvider
from activities.cloud.regions import CLOUD_PROVIDERS
from activities.secrets import AgentVault, VaultSettings
from cloudsim.testing import RunningSim, start_cloudsim
from workers import devstack
from workers.main import build_services
from workers.redaction import configure_logging
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
) -> AsyncIterator[DevStack]:
    logs = home / "logs"
    # The starters block while they wait for readiness: keep them off the event loop.
    temporal = await asyncio.to_thread(devstack.start_temporal, logs, port=temporal_port, ui_port=ui_port)
    openbao = None
    sim = None
    local = LocalProvider(state_dir=home / "local-vms")
    try:
        sim = await asyncio.to_thread(start_cloudsim, home / "cloudsim", boot_latency_s=boot_latency_s)
        providers: dict[str, CloudProvider] = {"local": local}
        settings = WorkerSettings(home=home, providers=("local", *CLOUD_PROVIDERS))
        providers.update(default_providers(replace(settings, providers=CLOUD_PROVIDERS), sim.env()))
        openbao = await asyncio.to_thread(devstack.start_openbao, logs, port=vault_port)
        vault_settings = VaultSettings(addr=openbao.addr, token=openbao.root_token)
        vault = AgentVault(vault_settings)
        await asyncio.to_thread(vault.ensure_engines)
        database_url = f"sqlite:///{home / 'lobstack.db'}"
        services = build_services(
            vault_settings=vault_settings, database_url=database_url, worker_settings=settings, providers=providers
        )
        client = await Client.connect(temporal.address)
        async with running_workers(client, services):
            yield DevStack(home, temporal, openbao, client, vault, local, database_url, sim, providers)
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
    *, show_root_token: bool = False, temporal_port: int = 7233, ui_port: int = 8233, vault_port: int = 8200
) -> int:
    configure_logging()
    home = Path(os.environ.get("LOBSTACK_DEV_HOME", Path(tempfile.gettempdir()) / "lobstack-dev"))
    shutil.rmtree(home, ignore_errors=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with dev_stack(home, temporal_port=temporal_port, ui_port=ui_port, vault_port=vault_port) as stack:
        token_file = home / "openbao-root-token"
        token_file.touch(mode=0o600)
        token_file.write_text(stack.openbao.root_token)
        print(f"Temporal Web UI : {stack.temporal.ui_url}")
        print(f"Temporal        : {stack.temporal.address}")
        print(f"OpenBao         : {stack.openbao.addr} (root token in {token_file})")
        if show_root_token:
            print(f"OpenBao token   : {stack.openbao.root_token}")
        print(f"Registry        : {stack.database_url}")
        print(f"Cloud simulator : {stack.cloudsim.url} (Hetzner, DigitalOcean and Vultr APIs)")
        print("Worker          : running; try in another shell:")
        print("  lobstack agent create --account acme --name helper --require-approval --wait")
        print("Ctrl-C stops everything.", flush=True)
        await stop.wait()
    print("stopped: worker, Temporal, OpenBao and every local agent")
    return 0
