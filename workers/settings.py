"""What a worker runs, from the environment, with embedded defaults for a laptop (Temporal's address and namespace:
`connection.settings.TemporalSettings`)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


def lobstack_home() -> Path:
    return Path(os.environ.get("LOBSTACK_HOME", Path.home() / ".lobstack"))


@dataclass(frozen=True)
class WorkerSettings:
    home: Path
    providers: tuple[str, ...] = ("local",)
    max_concurrent_activities: int = 64
    graceful_shutdown_s: float = 10.0
    gateway_url: str = ""

    @property
    def local_vm_dir(self) -> Path:
        return self.home / "local-vms"

    @classmethod
    def from_env(cls) -> WorkerSettings:
        providers = tuple(p for p in os.environ.get("LOBSTACK_PROVIDERS", "local").split(",") if p)
        return cls(home=lobstack_home(), providers=providers, gateway_url=os.environ.get("LOBSTACK_GATEWAY_URL", ""))
