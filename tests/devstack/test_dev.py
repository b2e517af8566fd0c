"""`lobstack dev` brings up Temporal with its Web UI, OpenBao and a worker, and Ctrl-C stops all of it."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import socket
import stat
import subprocess
import sys
from pathlib import Path

import httpx
from temporalio.api.workflowservice.v1 import DescribeWorkerDeploymentRequest
from temporalio.client import Client

from activities.cloud.local import pid_alive
from workers.schedules import SCHEDULE_IDS

READY = "Ctrl-C stops everything."


async def _schedule_ids(address: str) -> set[str]:
    client = await Client.connect(address)
    return {schedule.id async for schedule in await client.list_schedules()}


async def _current_build_id(address: str, deployment_name: str) -> str:
    client = await Client.connect(address)
    described = await client.workflow_service.describe_worker_deployment(
        DescribeWorkerDeploymentRequest(namespace=client.namespace, deployment_name=deployment_name)
    )
    return described.worker_deployment_info.routing_config.current_deployment_version.build_id


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _printed_port(printed: str, label: str) -> int:
    """The port of the address `lobstack dev` printed after `label`."""
    found = re.search(rf"^{re.escape(label)}\s*: (?:http://)?127\.0\.0\.1:(\d+)", printed, re.MULTILINE)
    assert found, f"{label!r} not printed:\n{printed}"
    return int(found.group(1))


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def test_dev_runs_everything_and_ctrl_c_stops_it(tmp_path: Path) -> None:
    # Port 0: `lobstack dev` picks each port itself (and picks again if another process takes it first), then prints
    # them. Ports picked here and handed over could be taken by another process before the servers bind them.
    env = {**os.environ, "LOBSTACK_DEV_HOME": str(tmp_path / "dev"), "LOBSTACK_BUILD_ID": "dev-check"}
    env.pop("LOBSTACK_VERSIONING", None)
    env.pop("LOBSTACK_DEPLOYMENT_NAME", None)
    lobstack = [sys.executable, "-m", "clients.cli"]
    dev = subprocess.Popen(
        [*lobstack, "dev", "--temporal-port", "0", "--ui-port", "0", "--vault-port", "0", "--gateway-port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    try:
        lines = []
        assert dev.stdout is not None
        for line in dev.stdout:  # ends when dev exits, so a failed start cannot hang here
            lines.append(line)
            if READY in line:
                break
        printed = "".join(lines)
        assert READY in printed, printed
        ports = {
            "temporal": _printed_port(printed, "Temporal"),
            "ui": _printed_port(printed, "Temporal Web UI"),
            "vault": _printed_port(printed, "OpenBao"),
            "gateway": _printed_port(printed, "Agent gateway"),
        }
        # Logs (OpenBao's holds the root token) and state for this user only.
        home = tmp_path / "dev"
        assert _mode(home) == 0o700 and _mode(home / "logs") == 0o700
        assert _mode(home / "openbao-root-token") == 0o600
        logs = {p.name: _mode(p) for p in home.rglob("*.log")}
        assert f"openbao-{ports['vault']}.log" in logs and f"temporal-{ports['temporal']}.log" in logs, logs
        assert set(logs.values()) == {0o600}, logs
        assert "root token in" in printed and "s." not in printed.split("OpenBao")[1].split("\n")[0].split("(")[0]
        assert httpx.get(f"http://127.0.0.1:{ports['ui']}/", timeout=10).status_code == 200
        assert httpx.get(f"http://127.0.0.1:{ports['gateway']}/healthz", timeout=10).json() == {"status": "ok"}
        assert asyncio.run(_schedule_ids(f"127.0.0.1:{ports['temporal']}")) == set(SCHEDULE_IDS)
        # Worker Versioning as in production: the worker's version is current, so the agent below starts on it.
        assert "Worker Deployment lobstack build id dev-check (current)" in printed
        assert asyncio.run(_current_build_id(f"127.0.0.1:{ports['temporal']}", "lobstack")) == "dev-check"

        address = ["--address", f"127.0.0.1:{ports['temporal']}"]
        create = subprocess.run(
            [*lobstack, *address, "agent", "create", "--account", "acme", "--name", "devcheck", "--wait"],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert create.returncode == 0, create.stderr
        agent_id = create.stdout.splitlines()[0].strip()
        assert "running" in create.stdout
        vm = json.loads((tmp_path / "dev" / "local-vms" / agent_id / "vm.json").read_text())
        assert pid_alive(vm["pid"])
    finally:
        dev.send_signal(signal.SIGINT)
        rest, _ = dev.communicate(timeout=60)
    assert dev.returncode == 0, rest
    assert "stopped" in rest
    for name, port in ports.items():
        assert not _port_open(port), f"{name} still listening on {port}"
    assert not pid_alive(vm["pid"]), "the dev stack's agent outlived it"
