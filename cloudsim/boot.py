"""Booting a simulated VM: per-VM timers move it through its phases; at `running` the real agent bridge starts.

The bridge gets what cloud-init would have written: the bootstrap JSON from the user-data's `write_files` entry, in a
0600 file in the VM's own directory, with `listen_host` set to the VM's loopback IP so `http://<vm ip>:8787/health`
answers exactly as it would on a real VM's public IP. The agent API's socket is `<state>/run/<12 hex>/agent.sock`
(directories 0700; `agent_socket(vm)`, and `agent_socket` in `/_sim/state`) instead of `/run/lobstack/agent.sock`, for
the simulator's user (a simulated VM has no `lobstack-agent` user): every simulated VM shares the host's loopback, but
none can reach another's socket through it. Not under the VM's directory: a Vultr id is a UUID, and a Unix socket
path holds at most 107 bytes.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import hashlib
import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

import bridge
from contracts.bootstrap import BOOTSTRAP_PATH, BRIDGE_PORT

if TYPE_CHECKING:
    from cloudsim.state import VM, SimState

__all__ = ["BRIDGE_PORT", "Booter", "agent_socket", "parse_bootstrap", "stop_processes"]

log = logging.getLogger("cloudsim.boot")
_REPO_ROOT = Path(bridge.__file__).resolve().parent.parent


def parse_bootstrap(user_data: str) -> dict[str, Any] | None:
    """The bootstrap config carried in cloud-init user-data, or None when the VM carries no lobstack config."""
    try:
        doc = yaml.safe_load(user_data)
    except yaml.YAMLError:
        return None
    if not isinstance(doc, dict):
        return None
    for entry in doc.get("write_files") or []:
        if not isinstance(entry, dict) or entry.get("path") != BOOTSTRAP_PATH:
            continue
        content = entry.get("content", "")
        try:
            if str(entry.get("encoding", "")).lower() in ("b64", "base64"):
                content = base64.b64decode(content, validate=True).decode()
            config = json.loads(content)
        except (binascii.Error, UnicodeDecodeError, ValueError):
            return None
        return config if isinstance(config, dict) else None
    return None


class Booter:
    def __init__(self, state: SimState) -> None:
        self.state = state

    def schedule(self, vm: VM) -> None:
        """Arm this VM's own timers; called from the event loop right after the VM is recorded."""
        loop = asyncio.get_running_loop()
        latency = max(0.0, self.state.boot_latency_s)
        vm.extra["timers"] = [
            loop.call_later(latency * 0.4, self._to_starting, vm),
            loop.call_later(latency, self._to_running, vm),
        ]

    def cancel(self, vm: VM) -> None:
        for timer in vm.extra.pop("timers", []):
            timer.cancel()

    def _alive(self, vm: VM) -> bool:
        return self.state.get_vm(vm.provider, str(vm.id)) is vm

    def _to_starting(self, vm: VM) -> None:
        with self.state.lock:
            if self._alive(vm) and vm.phase == "provisioning":
                vm.phase = "starting"

    def _to_running(self, vm: VM) -> None:
        with self.state.lock:
            if not self._alive(vm):
                return
            vm.phase = "running"
            for action in vm.extra.pop("boot_actions", []):
                self.state.finish_action(action, "success" if vm.provider == "hetzner" else "completed")
        # A Hetzner server created with start_after_create=false stays off: nothing boots.
        powered = vm.extra.get("power_on", True)
        config = parse_bootstrap(vm.user_data) if vm.user_data and powered else None
        if config is None:
            return
        try:
            vm.bridge = start_bridge(vm, config)
        except OSError:
            log.exception("could not start the bridge of %s %s", vm.provider, vm.id)


def agent_socket(vm: VM) -> Path:
    """Where this VM's bridge serves the agent API: short, since it must fit a Unix socket path, and one per VM."""
    runtime = vm.vm_dir.parent.parent / "run"  # vm_dir is <state>/vms/<provider>-<id>
    return runtime / hashlib.sha256(vm.vm_dir.name.encode()).hexdigest()[:12] / "agent.sock"


def start_bridge(vm: VM, config: dict[str, Any]) -> subprocess.Popen[bytes]:
    config = dict(config)
    config["listen_host"] = vm.ip
    config.setdefault("listen_port", BRIDGE_PORT)
    config["address_file"] = str(vm.vm_dir / "bridge.address")
    socket_path = agent_socket(vm)
    socket_path.parent.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    socket_path.parent.mkdir(mode=0o700, exist_ok=True)
    config["agent_socket"] = str(socket_path)
    config["agent_user"] = ""
    vm.extra["agent_socket"] = str(socket_path)
    vm.vm_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = vm.vm_dir / "bootstrap.json"
    # 0600 from the first byte: the file holds a wrapped token.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(config, f)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(_REPO_ROOT), env.get("PYTHONPATH", "")) if p)
    with open(vm.vm_dir / "bridge.log", "ab") as logfile:
        proc = subprocess.Popen(
            [sys.executable, "-m", "bridge", "--config", str(path)],
            cwd=_REPO_ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=logfile,
            stderr=subprocess.STDOUT,
            # Its own session, so stopping it reaches everything it started and a ^C to cloudsim does not.
            start_new_session=True,
        )
    log.info("%s %s running, bridge pid %d on %s:%s", vm.provider, vm.id, proc.pid, vm.ip, config["listen_port"])
    return proc


def stop_processes(procs: Iterable[subprocess.Popen[bytes]], grace_s: float = 5.0) -> None:
    """SIGTERM every process group, wait up to `grace_s` for all of them together, then SIGKILL what is left."""
    procs = [p for p in procs if p.poll() is None]
    for proc in procs:
        _signal_group(proc, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    for proc in procs:
        try:
            proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            _signal_group(proc, signal.SIGKILL)
            proc.wait()


def kill_processes(procs: Iterable[subprocess.Popen[bytes]]) -> None:
    """SIGKILL every process group and reap it: a deleted VM is gone at once, as if its power were pulled, so nothing
    on it (the bridge revoking its own Vault token, say) runs a shutdown. Cleaning up after it is the caller's job."""
    procs = [p for p in procs if p.poll() is None]
    for proc in procs:
        _signal_group(proc, signal.SIGKILL)
    for proc in procs:
        proc.wait()


def _signal_group(proc: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, sig)
