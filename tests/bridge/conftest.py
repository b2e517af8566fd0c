"""Fixtures for the bridge tests: a real OpenBao, and a helper that runs `python -m bridge` as a real process, from
the environment the bridge ships in (tests/bridge/shipped.py), not from the development one."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from activities.secrets import AgentVault, VaultSettings
from bridge.config import BootstrapConfig
from devstack import OpenBaoDev
from tests.bridge import shipped

REPO = Path(__file__).resolve().parents[2]
T = TypeVar("T")


@pytest.fixture(scope="session")
def bridge_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The interpreter of the shipped bridge's environment: the `bridge` extra's packages and the bridge's own source
    packages only. Run it with `-I` so neither the working directory nor PYTHON* variables add anything."""
    return shipped.build(tmp_path_factory.getbasetemp())


@pytest.fixture(scope="session")
def bridge_vault(openbao: OpenBaoDev) -> AgentVault:
    vault = AgentVault(VaultSettings(addr=openbao.addr, token=openbao.root_token, request_timeout_s=5.0))
    vault.ensure_engines()
    return vault


@pytest.fixture
def agent_id() -> str:
    return f"b-{uuid.uuid4().hex[:12]}"


@dataclass
class BridgeProcess:
    popen: subprocess.Popen[bytes]
    address_file: Path
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def base_url(self, timeout: float = 15.0) -> str:
        def read() -> str:
            return self.address_file.read_text().strip() if self.address_file.exists() else ""

        return wait_for(read, timeout, "address file", self)

    def health(self) -> tuple[int, dict[str, Any]]:
        resp = httpx.get(f"{self.base_url()}/health", timeout=2.0)
        return resp.status_code, resp.json()

    def wait_status(self, status: str, timeout: float = 20.0) -> tuple[int, dict[str, Any]]:
        def check() -> tuple[int, dict[str, Any]] | None:
            code, body = self.health()
            return (code, body) if body["status"] == status else None

        return wait_for(check, timeout, f"status {status!r}", self)

    def stop(self, sig: signal.Signals = signal.SIGTERM, timeout: float = 15.0) -> int:
        self.popen.send_signal(sig)
        return self.popen.wait(timeout)


def wait_for(check: Callable[[], T | None], timeout: float, what: str, proc: BridgeProcess) -> T:
    """Poll until `check` returns something truthy, with a deadline; fail loudly with the bridge's log."""
    deadline = time.monotonic() + timeout
    delay = 0.02
    while time.monotonic() < deadline:
        if proc.popen.poll() is not None:
            pytest.fail(f"bridge exited with {proc.popen.returncode} while waiting for {what}:\n{proc.log()}")
        result = check()
        if result:
            return result
        time.sleep(delay)
        delay = min(delay * 1.5, 0.25)
    pytest.fail(f"bridge: no {what} after {timeout}s:\n{proc.log()}")


@pytest.fixture
def start_bridge(tmp_path: Path, bridge_python: Path) -> Iterator[Callable[..., BridgeProcess]]:
    started: list[BridgeProcess] = []

    def start(config: BootstrapConfig, *extra: str, name: str = "bridge") -> BridgeProcess:
        config_path = tmp_path / f"{name}.json"
        config_path.touch(mode=0o600)
        config_path.write_text(config.to_json())
        log_path = tmp_path / f"{name}.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith("VAULT_")}
        with log_path.open("wb") as log:
            popen = subprocess.Popen(
                # -u: unbuffered, as PYTHONUNBUFFERED would be were -I not ignoring it.
                [str(bridge_python), "-I", "-u", "-m", "bridge", "--config", str(config_path), *extra],
                cwd=tmp_path,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        proc = BridgeProcess(popen=popen, address_file=Path(config.address_file), log_path=log_path)
        started.append(proc)
        return proc

    yield start
    for proc in started:
        if proc.popen.poll() is None:
            proc.popen.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.popen.wait(5)
