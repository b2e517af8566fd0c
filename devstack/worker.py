"""A worker as its own process (`lobstack worker`, configured from the environment exactly as in production), for
stacks that must kill it like a crash and start it again (`make chaos`)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from devstack.errors import DevStackError
from devstack.processes import Process, lobstack_binary, spawn

__all__ = ["WorkerProcess"]


class WorkerProcess:
    """`lobstack worker` as a child process: started, SIGKILLed and started again by its owner."""

    def __init__(self, env: dict[str, str], log_dir: Path) -> None:
        self.env = env
        self.log_dir = log_dir
        self.process: Process | None = None
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
        self.process = spawn("worker", [lobstack_binary(), "worker"], self.log_path, env=self.env)

    async def started(self, timeout_s: float = 60.0) -> None:
        """Until this start logs that it polls (imports done, Vault engines checked, connected)."""
        if self.process is None:
            raise DevStackError("worker: started() before start()")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        delay = 0.05
        while "worker polling" not in self.log_path.read_text(errors="replace"):
            if self.process.popen.poll() is not None:
                raise DevStackError(f"worker exited with {self.process.popen.returncode}; see {self.log_path}")
            if loop.time() > deadline:
                raise DevStackError(f"worker not polling after {timeout_s:.0f}s; see {self.log_path}")
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.5)

    def kill(self) -> None:
        """No graceful shutdown: in-flight activities just vanish, as in a crash."""
        if self.process is not None:
            self.process.kill()
            self.kills += 1

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop(timeout=20.0)
