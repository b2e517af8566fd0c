"""The `local` provider: each "VM" is a local process running the agent bridge.

All state lives on disk under `<state_dir>/<agent_id>/` (vm.json, the bootstrap file, the bridge's address file and
log), and the bridge runs in its own session, so a restarted worker adopts the processes an earlier one started.
The agent API that the agent's own process calls is a Unix socket, `agent_socket(agent_id)`, under
`<state_dir>/.run/`, where its path stays short.
A per-agent file lock serialises create and delete, so an activity retried while its first attempt still runs
cannot start a second process.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from activities.cloud.base import ACCOUNT_LABEL, AGENT_LABEL, VM, vm_name
from activities.cloud.catalog import CatalogReads, Money, Offer
from activities.cloud.no_pools import NoPools
from activities.errors import ProviderRejected, ProviderUnavailable, VMNameTaken
from contracts.bootstrap import MAX_SOCKET_PATH_BYTES, BootstrapConfig
from contracts.models import CreateVMRequest
from contracts.regions import ProviderName

_PREFIX = "local-"
NO_POOLS = "no warm pools on local: a local VM is a process keyed by its agent's id and cannot become another agent's"
# Our three sizes, each a process on this machine: nominal shapes (what the clouds' plans for them give) at no cost.
_SIZES = {"small": (1, 2048, 0), "medium": (2, 4096, 0), "large": (4, 8192, 0)}
LOCAL_LOCATION = "local"


def _atomic_write(path: Path, text: str, mode: int = 0o600) -> None:
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.replace(tmp, path)


def _stat_fields(pid: int) -> list[str] | None:
    """/proc/<pid>/stat from field 3 (state) on, or None when there is no such process; the command name before
    them may hold spaces and parentheses, hence the split at the last ')'."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()
    except OSError:
        return None


def _start_ticks(pid: int) -> str | None:
    """When the process started (field 22 of /proc/<pid>/stat, clock ticks since boot): with the pid, a name for one
    process that neither an exec nor pid reuse changes meaning of."""
    fields = _stat_fields(pid)
    return fields[19] if fields is not None else None


def _process_alive(pid: int, marker: str = "", started: str | None = None) -> bool:
    """True when `pid` is a live (non-zombie) process that is the one we started, guarding against pid reuse.

    Identity is the process's start time when it was recorded: a command line reads empty while the process is
    inside an exec (a bridge wrapper that execs the bridge), which would make a booting VM look stopped. Older
    records without it fall back to `marker` in the command line."""
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)  # reap our own exited child so it does not linger as a zombie
    fields = _stat_fields(pid)
    if fields is None or fields[0] in ("Z", "X"):
        return False
    if started is not None:
        return fields[19] == started
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return False
    return marker in cmdline


def pid_alive(pid: int) -> bool:
    """Whether a process id is still a live process (zombies count as gone)."""
    return _process_alive(pid)


class LocalProvider(NoPools, CatalogReads):
    no_pools_reason = NO_POOLS

    name: ProviderName = "local"

    def __init__(
        self, *, state_dir: Path, bridge_argv: Sequence[str] | None = None, stop_timeout_s: float = 10.0
    ) -> None:
        self.state_dir = state_dir
        # The command that runs a bridge; the config path is appended. Injectable so tests can run a broken agent.
        self.bridge_argv = list(bridge_argv) if bridge_argv else [sys.executable, "-m", "bridge", "--config"]
        self.stop_timeout_s = stop_timeout_s

    # --- paths and locking ----------------------------------------------------------------------------------------

    def _dir(self, agent_id: str) -> Path:
        return self.state_dir / agent_id

    @contextlib.contextmanager
    def _locked(self, agent_id: str) -> Iterator[Path]:
        directory = self._dir(agent_id)
        try:
            # Only the worker's user: the directory holds the bootstrap file and the bridge's log.
            directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            lock = (self.state_dir / f".{agent_id}.lock").open("a")
        except OSError as exc:
            raise ProviderUnavailable(f"local provider cannot use {self.state_dir}: {exc.strerror}") from exc
        with lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield directory

    @staticmethod
    def _agent_id(vm_id: str) -> str:
        if not vm_id.startswith(_PREFIX):
            raise ProviderRejected(f"{vm_id!r} is not a local VM id")
        return vm_id.removeprefix(_PREFIX)

    def _read(self, agent_id: str) -> VM | None:
        directory = self._dir(agent_id)
        try:
            meta = json.loads((directory / "vm.json").read_text())
        except (OSError, ValueError):
            return None
        config_path = str(directory / "bootstrap.json")
        if not _process_alive(int(meta["pid"]), config_path, meta.get("started")):
            return VM(self.name, meta["vm_id"], meta["name"], agent_id, "stopped")
        try:
            address = (directory / "address").read_text().strip()
        except OSError:
            address = ""
        return VM(self.name, meta["vm_id"], meta["name"], agent_id, "running" if address else "creating", address)

    def agent_socket(self, agent_id: str) -> Path:
        """Where the agent's bridge serves the agent API (`bridge.agent_api`), for the agent's own process: it runs as
        the worker's user, which is the user the bridge answers. `<state_dir>/.run/<12 hex>/agent.sock`: a Unix
        socket path holds at most 107 bytes and an agent id up to 40, and `.run` is no name an agent id can take."""
        return self.state_dir / ".run" / hashlib.sha256(agent_id.encode()).hexdigest()[:12] / "agent.sock"

    def pid_of(self, agent_id: str) -> int | None:
        """The process id of the agent's bridge, for operators and tests that check a process really ended."""
        try:
            return int(json.loads((self._dir(agent_id) / "vm.json").read_text())["pid"])
        except (OSError, ValueError, KeyError):
            return None

    # --- CloudProvider --------------------------------------------------------------------------------------------

    def find(self, agent_id: str) -> VM | None:
        return self._read(agent_id)

    def get(self, vm_id: str) -> VM | None:
        return self._read(self._agent_id(vm_id))

    def create(self, request: CreateVMRequest, bootstrap: BootstrapConfig) -> VM:
        socket_path = self.agent_socket(request.agent_id)
        if len(os.fsencode(socket_path)) > MAX_SOCKET_PATH_BYTES:
            raise ProviderRejected(
                f"local provider: the agent API socket {socket_path} is over the {MAX_SOCKET_PATH_BYTES} bytes a Unix "
                "socket path holds; use a shorter state directory (LOBSTACK_HOME)"
            )
        with self._locked(request.agent_id) as directory:
            # Checked under the lock: a live bridge holds the agent's directory as a name holds a cloud VM. A dead
            # one holds nothing (the create activity replaces it; its files are overwritten here).
            existing = self._read(request.agent_id)
            if existing is not None and existing.status != "stopped":
                raise VMNameTaken(f"local provider: agent {request.agent_id} already has a live VM {existing.vm_id}")
            config_path = directory / "bootstrap.json"
            address_file = directory / "address"
            address_file.unlink(missing_ok=True)
            # Directories only the worker's user can write: the bridge refuses anything else for its socket.
            socket_path.parent.parent.mkdir(mode=0o700, exist_ok=True)
            socket_path.parent.mkdir(mode=0o700, exist_ok=True)
            config = replace(
                bootstrap,
                listen_host="127.0.0.1",
                listen_port=0,
                address_file=str(address_file),
                agent_socket=str(socket_path),
                agent_user="",
            )
            _atomic_write(config_path, config.to_json())
            with (directory / "bridge.log").open("ab") as log:
                proc = subprocess.Popen(
                    [*self.bridge_argv, str(config_path)],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    start_new_session=True,  # outlives the worker, like a real VM
                    cwd=directory,
                )
            vm = VM(self.name, _PREFIX + request.agent_id, vm_name(request.agent_id), request.agent_id, "creating")
            meta = {
                "vm_id": vm.vm_id,
                "name": vm.name,
                "pid": proc.pid,
                "started": _start_ticks(proc.pid),
                "labels": {AGENT_LABEL: request.agent_id, ACCOUNT_LABEL: request.account_id},
                "created_at": datetime.now(UTC).isoformat(),
            }
            _atomic_write(directory / "vm.json", json.dumps(meta))
            return vm

    def delete(self, vm_id: str) -> bool:
        agent_id = self._agent_id(vm_id)
        if not (self._dir(agent_id) / "vm.json").exists():
            return False
        with self._locked(agent_id) as directory:
            try:
                meta = json.loads((directory / "vm.json").read_text())
            except (OSError, ValueError):
                meta = None
            if meta is not None:
                self._terminate(int(meta["pid"]), str(directory / "bootstrap.json"), meta.get("started"))
            shutil.rmtree(directory, ignore_errors=True)
            shutil.rmtree(self.agent_socket(agent_id).parent, ignore_errors=True)
            (self.state_dir / f".{agent_id}.lock").unlink(missing_ok=True)
        return meta is not None

    def catalog(self) -> list[Offer]:
        return self.offers(LOCAL_LOCATION)

    def offers(self, location: str) -> list[Offer]:
        """The three sizes, wherever asked: every local "location" is this machine."""
        return [
            Offer(self.name, size, location, vcpus, memory_mb, disk_gb, Money(Decimal(0), "USD"))
            for size, (vcpus, memory_mb, disk_gb) in _SIZES.items()
        ]

    def list_managed(self) -> list[VM]:
        if not self.state_dir.exists():
            return []
        found = (self._read(child.name) for child in sorted(self.state_dir.iterdir()) if child.is_dir())
        return [vm for vm in found if vm is not None]

    def _terminate(self, pid: int, marker: str, started: str | None) -> None:
        if not _process_alive(pid, marker, started):
            return
        for sig, wait_s in ((signal.SIGTERM, self.stop_timeout_s), (signal.SIGKILL, 5.0)):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, sig)
            deadline = time.monotonic() + wait_s
            delay = 0.02
            while time.monotonic() < deadline:
                if not _process_alive(pid, marker, started):
                    return
                time.sleep(delay)
                delay = min(delay * 2, 0.2)
        raise ProviderUnavailable(f"local VM process {pid} did not exit after SIGKILL")
