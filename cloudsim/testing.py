"""Start cloudsim as a subprocess the same way in every test fixture and bench.

sim = start_cloudsim(tmp_path)
client = hcloud.Client(token=sim.tokens["hetzner"], api_endpoint=sim.hetzner_url)
...
sim.stop()
"""

from __future__ import annotations

import os
import selectors
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from cloudsim import DEFAULT_TOKENS

__all__ = ["RunningSim", "start_cloudsim"]

_REPO_ROOT = Path(__file__).resolve().parent.parent
_READY_PREFIX = "cloudsim listening on "


@dataclass
class RunningSim:
    url: str
    process: subprocess.Popen[str]
    workdir: Path
    tokens: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_TOKENS))

    @property
    def hetzner_url(self) -> str:
        return f"{self.url}/hetzner/v1"

    @property
    def digitalocean_url(self) -> str:
        # python-digitalocean joins relative paths onto this, so it must end with a slash.
        return f"{self.url}/digitalocean/v2/"

    @property
    def vultr_url(self) -> str:
        return f"{self.url}/vultr/v2"

    def env(self) -> dict[str, str]:
        """The environment that points the real cloud SDKs at this simulator, exactly as real credentials would."""
        return {
            "HCLOUD_TOKEN": self.tokens["hetzner"],
            "HCLOUD_ENDPOINT": self.hetzner_url,
            "DIGITALOCEAN_ACCESS_TOKEN": self.tokens["digitalocean"],
            "DIGITALOCEAN_END_POINT": self.digitalocean_url,
            "VULTR_API_KEY": self.tokens["vultr"],
            "VULTR_ENDPOINT": self.vultr_url,
        }

    @property
    def log_path(self) -> Path:
        return self.workdir / "cloudsim.log"

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        response = httpx.request(method, f"{self.url}{path}", json=body, timeout=30.0)
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result

    def state(self) -> dict[str, Any]:
        return self._call("GET", "/_sim/state")

    def set_faults(self, **body: Any) -> dict[str, Any]:
        """One fault: provider=..., endpoint=... (cloudsim.ENDPOINT_KEYS or '*')."""
        return self._call("POST", "/_sim/faults", body)

    def clear_faults(self) -> dict[str, Any]:
        return self._call("DELETE", "/_sim/faults")

    def reset(self) -> dict[str, Any]:
        return self._call("POST", "/_sim/reset")

    def configure(self, **body: Any) -> dict[str, Any]:
        """boot_latency_s=..., rate_limits={provider: {...}}."""
        return self._call("POST", "/_sim/config", body)

    def stop(self, timeout_s: float = 15.0) -> None:
        """SIGTERM (cloudsim then stops every bridge it started); SIGKILL only if it does not exit in time."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()

    def __enter__(self) -> RunningSim:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()


def start_cloudsim(
    workdir: Path,
    *,
    boot_latency_s: float = 0.2,
    extra_args: Sequence[str] = (),
    ready_timeout_s: float = 30.0,
) -> RunningSim:
    """Start `python -m cloudsim` on a free port with its state under `workdir`; returns once it accepts connections."""
    workdir.mkdir(mode=0o700, parents=True, exist_ok=True)
    tokens = dict(DEFAULT_TOKENS)
    args = list(extra_args)
    for i, arg in enumerate(args):
        value = args[i + 1] if arg == "--token" and i + 1 < len(args) else arg.removeprefix("--token=")
        if (arg == "--token" or arg.startswith("--token=")) and "=" in value:
            provider, _, token = value.partition("=")
            tokens[provider] = token
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(_REPO_ROOT), env.get("PYTHONPATH", "")) if p)
    env["PYTHONUNBUFFERED"] = "1"
    # 0600 from the start: the log names VMs, addresses and the simulated tokens' providers.
    log_fd = os.open(workdir / "cloudsim.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    with open(log_fd, "ab") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "cloudsim",
                "--host",
                "127.0.0.1",
                "--port",
                "0",
                "--boot-latency",
                str(boot_latency_s),
                "--state-dir",
                str(workdir / "state"),
                *args,
            ],
            cwd=_REPO_ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
        )
    assert process.stdout is not None
    deadline = time.monotonic() + ready_timeout_s
    line = ""
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        while time.monotonic() < deadline:
            if selector.select(timeout=max(0.0, deadline - time.monotonic())):
                line = process.stdout.readline()
                break
    if not line.startswith(_READY_PREFIX):
        process.kill()
        process.wait()
        raise RuntimeError(f"cloudsim did not start (exit {process.poll()}); see {workdir / 'cloudsim.log'}")
    return RunningSim(url=line[len(_READY_PREFIX) :].strip(), process=process, workdir=workdir, tokens=tokens)
