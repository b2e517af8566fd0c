"""A booting VM runs the real agent bridge on its own loopback IP (/health) and socket (agent API); deleting the VM
stops it."""

from __future__ import annotations

import base64
import functools
import os
import signal
import stat
from pathlib import Path

import httpx
from hcloud import Client
from hcloud.images import Image
from hcloud.locations import Location
from hcloud.server_types import ServerType
from hcloud.servers import BoundServer

from activities.cloud.userdata import render_cloud_init
from cloudsim.testing import RunningSim, start_cloudsim
from contracts.bootstrap import BRIDGE_PORT, BootstrapConfig
from tests.cloudsim.conftest import sim_vms, wait_for


def user_data(agent_id: str) -> str:
    config = BootstrapConfig(
        agent_id=agent_id,
        vault_addr="http://127.0.0.1:9",  # nothing listens there: the bridge stays "starting"
        role_id="role-id",
        wrapped_secret_id="s.wrapped",
        expected_creation_path="auth/approle/role/x/secret-id",
        listen_port=BRIDGE_PORT,
    )
    return render_cloud_init(config)


def public_ip(server: BoundServer) -> str:
    assert server.public_net is not None and server.public_net.ipv4 is not None
    return str(server.public_net.ipv4.ip)


def health(ip: str) -> dict[str, object] | None:
    try:
        response = httpx.get(f"http://{ip}:{BRIDGE_PORT}/health", timeout=1.0)
    except httpx.TransportError:
        return None
    body: dict[str, object] = response.json()
    return body


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def bridge_pid(sim: RunningSim, provider: str, vm_id: object) -> int | None:
    for vm in sim_vms(sim, provider):
        if vm["id"] == vm_id:
            pid = vm["bridge_pid"]
            assert pid is None or isinstance(pid, int), pid
            return pid
    return None


def test_hetzner_vm_runs_the_bridge(sim: RunningSim) -> None:
    client = Client(token=sim.tokens["hetzner"], api_endpoint=sim.hetzner_url, poll_interval=0.05)
    server = client.servers.create(
        name="agent-boot",
        server_type=ServerType(name="cpx11"),
        image=Image(name="ubuntu-24.04"),
        location=Location(name="fsn1"),
        user_data=user_data("agent-boot"),
    ).server
    ip = public_ip(server)
    pid = wait_for(lambda: bridge_pid(sim, "hetzner", server.id), what="bridge started")
    body = wait_for(lambda: health(ip), what="bridge /health")
    assert body["agent_id"] == "agent-boot"
    assert body["status"] in ("starting", "unhealthy", "compromised")

    vm_dir = sim.workdir / "state" / "vms" / f"hetzner-{server.id}"
    assert stat.S_IMODE((vm_dir / "bootstrap.json").stat().st_mode) == 0o600
    # The VM's address serves /health only; the agent API is a socket in the VM's own directory, for the agent's user.
    answer = httpx.post(f"http://{ip}:{BRIDGE_PORT}/tools/email.send/authorize", json={}, timeout=2.0)
    assert (answer.status_code, answer.json()) == (404, {"error": "not found"})
    [vm] = [vm for vm in sim_vms(sim, "hetzner") if vm["id"] == server.id]
    socket_file = Path(str(vm["agent_socket"]))
    assert socket_file.parent.parent == sim.workdir / "state" / "run"
    assert stat.S_ISSOCK(socket_file.lstat().st_mode) and stat.S_IMODE(socket_file.lstat().st_mode) == 0o600
    assert stat.S_IMODE(socket_file.parent.stat().st_mode) == stat.S_IMODE(vm_dir.stat().st_mode) == 0o700
    with httpx.Client(transport=httpx.HTTPTransport(uds=str(socket_file)), base_url="http://bridge") as api:
        answer = api.post("/tools/email.send/authorize", json={}, timeout=2.0)
    assert (answer.status_code, answer.json()) == (403, {"allowed": False, "reason": "tool not enabled"})

    client.servers.delete(server).wait_until_finished(max_retries=400)
    assert gone(pid)
    assert health(ip) is None
    assert not socket_file.exists()  # the deleted VM's /run went with it


def test_vultr_base64_user_data_runs_the_bridge(sim: RunningSim) -> None:
    encoded = base64.b64encode(user_data("agent-vultr").encode()).decode()
    with httpx.Client(base_url=sim.vultr_url, headers={"Authorization": f"Bearer {sim.tokens['vultr']}"}) as c:
        body = {"region": "sgp", "plan": "vc2-1c-2gb", "os_id": 2284, "label": "agent-vultr", "user_data": encoded}
        instance = c.post("/instances", json=body).json()["instance"]

        def ip() -> str | None:
            got = c.get(f"/instances/{instance['id']}").json()["instance"]
            return got["main_ip"] if got["server_status"] == "ok" else None

        address = wait_for(ip, what="instance ok")
        assert wait_for(lambda: health(address), what="bridge /health")["agent_id"] == "agent-vultr"
        pid = bridge_pid(sim, "vultr", instance["id"])
        assert pid
        assert c.delete(f"/instances/{instance['id']}").status_code == 204
    wait_for(lambda: gone(pid), what="bridge stopped")


def test_vm_without_lobstack_user_data_runs_nothing(sim: RunningSim) -> None:
    with httpx.Client(base_url=sim.vultr_url, headers={"Authorization": f"Bearer {sim.tokens['vultr']}"}) as c:
        body = {"region": "sgp", "plan": "vc2-1c-2gb", "os_id": 2284, "label": "plain"}
        body["user_data"] = base64.b64encode(b"#cloud-config\nruncmd:\n  - [echo, hi]\n").decode()
        c.post("/instances", json=body)
    vm = wait_for(lambda: [v for v in sim_vms(sim, "vultr") if v["status"] == "active" and v["phase"] == "running"])
    assert vm[0]["bridge_pid"] is None


def test_sigterm_leaves_no_bridge_behind(tmp_path: Path) -> None:
    own = start_cloudsim(tmp_path, boot_latency_s=0.1)
    try:
        client = Client(token=own.tokens["hetzner"], api_endpoint=own.hetzner_url)
        ips = []
        for i in range(2):
            server = client.servers.create(
                name=f"agent-{i}",
                server_type=ServerType(name="cpx11"),
                image=Image(name="ubuntu-24.04"),
                user_data=user_data(f"agent-{i}"),
            ).server
            ips.append(public_ip(server))
        for ip in ips:
            wait_for(functools.partial(health, ip), what="bridge /health")
        pids = [vm["bridge_pid"] for vm in own.state()["vms"]]
        assert all(pids)
        own.process.send_signal(signal.SIGTERM)
        assert own.process.wait(timeout=20) == 0
        for pid in pids:
            assert gone(pid), f"bridge {pid} outlived cloudsim"
    finally:
        own.stop()
