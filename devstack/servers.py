"""The development servers, started from installed packages: the Temporal dev server, OpenBao (in-memory dev mode, or
on Raft storage so it can be restarted) and the cloud simulator.

Used by every development stack (devstack/stack.py: `lobstack dev`, the demo, the benches, `make chaos`) and by the
test fixtures, so that all of them run the same servers the same way.
"""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from cloudsim.testing import RunningSim, start_cloudsim
from devstack.errors import DevStackError
from devstack.files import open_private, private_dir, write_private
from devstack.ports import free_port, free_port_pair, port_in_use, retrying
from devstack.processes import Process, openbao_binary, spawn, temporal_binary, wait_until
from devstack.server_tuning import dynamic_config_flags
from workflows.search_attributes import server_flags

__all__ = [
    "VAULT_BOOTSTRAP",
    "OpenBaoDev",
    "OpenBaoServer",
    "TemporalDev",
    "bootstrap_openbao",
    "start_openbao",
    "start_openbao_server",
    "start_simulator",
    "start_temporal",
]

# The operator step every stack runs against its OpenBao (mounts, policies, AppRole tuning): development only, so the
# script is read from the source tree next to this package.
VAULT_BOOTSTRAP = Path(__file__).resolve().parent.parent / "deploy" / "vault" / "bootstrap.sh"


@dataclass
class OpenBaoDev:
    """An OpenBao server in dev mode: in memory, unsealed, with a root token we chose."""

    addr: str
    root_token: str = field(repr=False)
    process: Process = field(repr=False)

    def stop(self) -> None:
        self.process.stop()


def start_openbao(
    workdir: Path, *, port: int | None = None, timeout: float = 30.0, pick_port: Callable[[], int] = free_port_pair
) -> OpenBaoDev:
    """OpenBao in dev mode on `port` (its cluster listener on port+1), or on ports picked here and picked again if
    another process takes them first. The root token is random and handed over in the environment, never on the
    command line (which any user of the machine can read); the log, where dev mode prints it, is 0600."""
    # OpenBao refuses a custom root token id carrying its own service-token prefix ("s."): plain random text only.
    token = secrets.token_urlsafe(24)
    fixed = () if port is None else (port, port + 1)

    def attempt() -> OpenBaoDev:
        chosen = port or pick_port()
        addr = f"http://127.0.0.1:{chosen}"
        argv = [openbao_binary(), "server", "-dev", f"-dev-listen-address=127.0.0.1:{chosen}", "-dev-no-store-token"]
        env = {**os.environ, "BAO_DEV_ROOT_TOKEN_ID": token}
        proc = spawn("openbao", argv, workdir / f"openbao-{chosen}.log", env=env)

        def ready() -> bool:
            # Only our server knows this token: another one answering on the port is not mistaken for ours.
            try:
                resp = httpx.get(f"{addr}/v1/auth/token/lookup-self", headers={"X-Vault-Token": token}, timeout=1.0)
            except httpx.HTTPError:
                return False
            return resp.status_code == 200

        wait_until(ready, proc, timeout, "starting", fixed=fixed)
        return OpenBaoDev(addr=addr, root_token=token, process=proc)

    return retrying(attempt, "openbao")


def bootstrap_openbao(addr: str, root_token: str, *, orchestrator_token_id: str = "", timeout: float = 60.0) -> None:
    """Run the operator step, deploy/vault/bootstrap.sh, against a development server with its root token: the
    engines and auth methods mounted and tuned (no user lockout on the agents' AppRole mount), the service policies,
    the codec's Transit key; with `orchestrator_token_id`, also an orchestrator token of that id. The same script
    an operator runs, so a development stack is configured as a deployment is."""
    if not VAULT_BOOTSTRAP.is_file():
        raise DevStackError(f"{VAULT_BOOTSTRAP} not found: development stacks run from a source checkout")
    env = {**os.environ, "BAO": openbao_binary(), "BAO_ADDR": addr, "BAO_TOKEN": root_token}
    env.pop("LOBSTACK_ORCHESTRATOR_TOKEN_ID", None)
    if orchestrator_token_id:
        env["LOBSTACK_ORCHESTRATOR_TOKEN_ID"] = orchestrator_token_id
    done = subprocess.run(
        ["sh", str(VAULT_BOOTSTRAP)], env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    if done.returncode != 0:
        raise DevStackError(f"deploy/vault/bootstrap.sh failed with {done.returncode}:\n{done.stderr[-2000:]}")


# A restart keeps its ports (clients hold the address): losing one is final.
_ALL_PORTS = range(65536)


@dataclass
class OpenBaoServer:
    """An OpenBao server on file storage that survives a restart: initialised once, unsealed after every start.

    For runs that must restart Vault mid-way (`make chaos`): the dev server keeps everything in memory and would
    come back empty. One unseal key, held here only; the root token outlives restarts like a real one."""

    addr: str
    root_token: str = field(repr=False)
    unseal_key: str = field(repr=False)
    config: Path
    log_path: Path
    process: Process | None = None
    restarts: int = 0

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()

    def restart(self, timeout: float = 30.0) -> None:
        """SIGTERM, start again on the same storage, unseal; returns once it serves requests."""
        self.stop()
        self.process = _start_bao_process(self.config, self.addr, self.log_path, timeout, fixed=_ALL_PORTS)
        _unseal(self.addr, self.unseal_key, self.process, timeout, fixed=_ALL_PORTS)
        self.restarts += 1


def start_openbao_server(
    workdir: Path, *, port: int | None = None, timeout: float = 30.0, pick_port: Callable[[], int] = free_port
) -> OpenBaoServer:
    """A fresh, initialised and unsealed server on `port` (or one picked here, and picked again if another process
    takes it first), its Raft data in a 0700 directory under `workdir`."""

    def attempt() -> OpenBaoServer:
        chosen = port or pick_port()
        cluster_port = pick_port()
        addr = f"http://127.0.0.1:{chosen}"
        private_dir(workdir)
        data = private_dir(workdir / f"openbao-{chosen}-data")
        config = workdir / f"openbao-{chosen}.hcl"
        # Integrated Raft, one node: OpenBao has no plain file storage. performance_multiplier 1 (the setting
        # recommended for production; the default scales Raft's timers by 5 for slow machines) elects the node
        # leader after a start or an unseal in about a second instead of six or more.
        write_private(
            config,
            f'storage "raft" {{\n  path = "{data}"\n  node_id = "chaos-0"\n  performance_multiplier = 1\n}}\n'
            f'listener "tcp" {{\n  address = "127.0.0.1:{chosen}"\n  cluster_address = "127.0.0.1:{cluster_port}"\n'
            f"  tls_disable = true\n}}\n"
            f'api_addr = "{addr}"\ncluster_addr = "https://127.0.0.1:{cluster_port}"\n',
        )
        log_path = workdir / f"openbao-{chosen}.log"
        fixed = () if port is None else (port,)
        proc = _start_bao_process(config, addr, log_path, timeout, fixed=fixed)
        try:
            resp = httpx.put(f"{addr}/v1/sys/init", json={"secret_shares": 1, "secret_threshold": 1}, timeout=30)
            resp.raise_for_status()
            init = resp.json()
            _unseal(addr, init["keys_base64"][0], proc, timeout, fixed=fixed)
        except BaseException:
            proc.stop()
            raise
        return OpenBaoServer(addr, init["root_token"], init["keys_base64"][0], config, log_path, proc)

    return retrying(attempt, "openbao")


def _start_bao_process(config: Path, addr: str, log_path: Path, timeout: float, *, fixed: Collection[int]) -> Process:
    proc = spawn("openbao", [openbao_binary(), "server", f"-config={config}"], log_path)
    port = int(addr.rsplit(":", 1)[1])

    def listening() -> bool:
        if proc.listens_on(port) is False:  # someone else's server may answer there; ours must hold the port
            return False
        try:
            httpx.get(f"{addr}/v1/sys/health", timeout=1.0)
        except httpx.HTTPError:
            return False
        return True

    wait_until(listening, proc, timeout, "starting", fixed=fixed)
    return proc


def _unseal(addr: str, key: str, proc: Process, timeout: float, *, fixed: Collection[int]) -> None:
    httpx.put(f"{addr}/v1/sys/unseal", json={"key": key}, timeout=30).raise_for_status()

    def active() -> bool:  # 200 only once unsealed and active, after its post-unseal setup
        try:
            return httpx.get(f"{addr}/v1/sys/health", timeout=1.0).status_code == 200
        except httpx.HTTPError:
            return False

    wait_until(active, proc, timeout, "unsealing", fixed=fixed)


@dataclass
class TemporalDev:
    """The Temporal CLI dev server with its Web UI; state in a file so a restart of a worker finds its workflows."""

    address: str
    ui_url: str
    process: Process
    namespace: str = "default"
    extra: dict[str, str] = field(default_factory=dict)

    def stop(self) -> None:
        self.process.stop()


def start_temporal(
    workdir: Path,
    *,
    port: int | None = None,
    ui_port: int | None = None,
    db_file: Path | None = None,
    ui_codec_endpoint: str | None = None,
    timeout: float = 60.0,
    pick_port: Callable[[], int] = free_port,
) -> TemporalDev:
    """The dev server on `port` with its Web UI on `ui_port`; either one not given is picked here. A port lost to
    another process (ours, or one the server picks for itself: HTTP, metrics, internal services) means a new start,
    unless it is one the caller gave (PortInUse)."""
    fixed = tuple(p for p in (port, ui_port) if p)

    def attempt() -> TemporalDev:
        frontend = port or pick_port()
        ui = ui_port or pick_port()
        argv = [
            temporal_binary(),
            "server",
            "start-dev",
            "--ip",
            "127.0.0.1",
            "--port",
            str(frontend),
            "--ui-port",
            str(ui),
            "--log-level",
            "warn",
            # Pending agent and tool approvals are found in the Web UI by these attributes.
            *server_flags(),
            *dynamic_config_flags(),
        ]
        if db_file is not None:
            argv += ["--db-filename", str(db_file)]
        if ui_codec_endpoint:
            # The Web UI then asks this codec server to show encrypted payloads (workers/codec_server.py).
            argv += ["--ui-codec-endpoint", ui_codec_endpoint]
        proc = spawn("temporal", argv, workdir / f"temporal-{frontend}.log")

        def ready() -> bool:
            text = proc.log_text()
            if "failed running UI server" in text:
                # The dev server runs on without its UI when the UI cannot listen: that start is lost.
                raise port_in_use(proc.name, text, fixed) or DevStackError(
                    f"temporal's Web UI failed:\n{proc.log_tail()}"
                )
            owned = proc.listens_on(frontend, ui)
            if owned is False:
                return False
            if owned is None and "Temporal Server:" not in text:  # printed once its own frontend listens
                return False
            try:
                with socket.create_connection(("127.0.0.1", frontend), timeout=0.5):
                    pass
                resp = httpx.get(f"http://127.0.0.1:{ui}/", timeout=1.0)
            except (OSError, httpx.HTTPError):
                return False
            return resp.status_code < 500

        wait_until(ready, proc, timeout, "starting", fixed=fixed)
        return TemporalDev(address=f"127.0.0.1:{frontend}", ui_url=f"http://127.0.0.1:{ui}", process=proc)

    return retrying(attempt, "temporal")


def start_simulator(
    workdir: Path,
    *,
    boot_latency_s: float,
    seed: int | None = None,
    rate_limits: Mapping[str, Mapping[str, object]] | None = None,
) -> RunningSim:
    """cloudsim, its state and log under `workdir` (0700); `seed` fixes its fault rolls, `rate_limits` replace the
    documented limits of the providers named."""
    sim_dir = private_dir(workdir)
    # cloudsim appends to this log (simulated VMs' bridges write beside it): made 0600 before it opens it.
    os.close(open_private(sim_dir / "cloudsim.log"))
    extra = ["--seed", str(seed)] if seed is not None else []
    sim = start_cloudsim(sim_dir, boot_latency_s=boot_latency_s, extra_args=extra)
    if rate_limits:
        try:
            sim.configure(rate_limits={p: dict(limits) for p, limits in rate_limits.items()})
        except BaseException:
            sim.stop()
            raise
    return sim
