"""The chaos run's servers, each real and each one the run can disrupt.

Temporal's dev server keeps its state in a file; OpenBao runs on Raft storage so a restart keeps every secret and
token; cloudsim answers for the three clouds; the gateway serves the bridges; and the worker is its own process
(`lobstack worker`, configured from the environment exactly as in production) so it can be killed with SIGKILL.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

from temporalio.client import Client

from activities.secrets import AgentVault, VaultSettings
from cloudsim.testing import RunningSim, start_cloudsim
from connection.codec import CodecKey, Keyring, data_converter, encode_keyring_spec
from contracts.regions import CLOUD_PROVIDERS
from gateway import GatewaySettings
from gateway import serving as serving_gateway
from workers import devstack

# Calls per second our budget allows each cloud in a chaos run, and the simulator's limit to match (x2: only the
# injected storms answer 429). The documented budgets would make a 200-lifecycle run last an hour on Hetzner alone;
# the API budget bench (bench/api_budget.py) measures those.
CHAOS_BUDGET_CALLS_PER_S = 20.0


class WorkerProcess:
    """`lobstack worker` as a child process: started, SIGKILLed and started again by the run."""

    def __init__(self, env: dict[str, str], log_dir: Path) -> None:
        self.env = env
        self.log_dir = log_dir
        self.process: devstack.Process | None = None
        self.starts = 0
        self.kills = 0

    @property
    def log_path(self) -> Path:
        return self.log_dir / f"worker-{self.starts}.log"

    @property
    def pid(self) -> int | None:
        return self.process.popen.pid if self.process else None

    def start(self) -> None:
        self.starts += 1
        self.process = devstack.spawn("worker", [devstack.lobstack_binary(), "worker"], self.log_path, env=self.env)

    async def started(self, timeout_s: float = 60.0) -> None:
        """Until this start logs that it polls (imports done, Vault engines checked, connected)."""
        assert self.process is not None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        delay = 0.05
        while "worker polling" not in self.log_path.read_text(errors="replace"):
            if self.process.popen.poll() is not None:
                raise RuntimeError(f"worker exited with {self.process.popen.returncode}; see {self.log_path}")
            if loop.time() > deadline:
                raise TimeoutError(f"worker not polling after {timeout_s:.0f}s; see {self.log_path}")
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.5)

    def kill(self) -> None:
        """No graceful shutdown: in-flight activities just vanish, as in a crash."""
        assert self.process is not None
        self.process.kill()
        self.kills += 1

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop(timeout=20.0)


@dataclass
class ChaosStack:
    home: Path
    temporal: devstack.TemporalDev
    openbao: devstack.OpenBaoServer
    sim: RunningSim
    client: Client
    vault: AgentVault
    worker: WorkerProcess
    database_url: str
    gateway_url: str = ""
    providers: tuple[str, ...] = field(default=CLOUD_PROVIDERS)


@contextlib.asynccontextmanager
async def chaos_stack(
    home: Path, *, seed: int, boot_latency_s: float, database_url: str | None = None
) -> AsyncIterator[ChaosStack]:
    # Server logs and state for this user only: logs 0600 in 0700 directories (workers/devstack.py).
    logs = devstack.private_dir(devstack.private_dir(home) / "logs")
    key = CodecKey.generate(f"chaos-{seed}")
    keys_file = devstack.write_private(home / "codec-keys", encode_keyring_spec([key]))
    database_url = database_url or f"sqlite:///{home / 'registry.db'}"

    temporal = openbao = sim = worker = None
    try:
        temporal = await asyncio.to_thread(devstack.start_temporal, logs, db_file=home / "temporal.db")
        openbao = await asyncio.to_thread(devstack.start_openbao_server, logs)
        # The operator step, as in a deployment: mounts, policies, and no user lockout on the agents' AppRole mount.
        await asyncio.to_thread(devstack.bootstrap_openbao, openbao.addr, openbao.root_token)
        sim_dir = devstack.private_dir(home / "cloudsim")
        os.close(devstack.open_private(sim_dir / "cloudsim.log"))  # cloudsim appends to it: 0600 before it opens it
        sim = await asyncio.to_thread(
            start_cloudsim, sim_dir, boot_latency_s=boot_latency_s, extra_args=["--seed", str(seed)]
        )
        limit = int(CHAOS_BUDGET_CALLS_PER_S * 2)
        limits: dict[str, dict[str, object]] = {p: {"limit": limit, "window_s": 1.0} for p in CLOUD_PROVIDERS}
        limits["digitalocean"]["minute_limit"] = limit * 60  # its second window, 250/min by default, scaled alike
        await asyncio.to_thread(sim.configure, rate_limits=limits)
        vault = AgentVault(VaultSettings(addr=openbao.addr, token=openbao.root_token))
        await asyncio.to_thread(vault.ensure_engines)
        client = await Client.connect(temporal.address, data_converter=data_converter(Keyring([key])))
        gateway = GatewaySettings(temporal=client, vault_addr=openbao.addr, listen_port=0, default_approvers=("chaos",))
        async with serving_gateway(gateway) as gateway_url:
            env = {
                **os.environ,
                **sim.env(),
                "TEMPORAL_ADDRESS": temporal.address,
                "VAULT_ADDR": openbao.addr,
                "VAULT_TOKEN": openbao.root_token,
                "DATABASE_URL": database_url,
                "LOBSTACK_HOME": str(home),
                "LOBSTACK_PROVIDERS": ",".join(CLOUD_PROVIDERS),
                "LOBSTACK_GATEWAY_URL": gateway_url,
                "LOBSTACK_CODEC_KEYS_FILE": str(keys_file),
                **{f"LOBSTACK_API_BUDGET_{p.upper()}": str(CHAOS_BUDGET_CALLS_PER_S) for p in CLOUD_PROVIDERS},
            }
            worker = WorkerProcess(env, logs)
            worker.start()
            await worker.started()
            yield ChaosStack(home, temporal, openbao, sim, client, vault, worker, database_url, gateway_url)
    finally:
        if worker is not None:
            worker.stop()
        if sim is not None:
            sim.stop()  # and every bridge it started
        if openbao is not None:
            openbao.stop()
        if temporal is not None:
            temporal.stop()
