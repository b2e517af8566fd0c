"""The restartable OpenBao of `make chaos` (devstack/servers.start_openbao_server): real server, Raft storage. What was
written before a restart is there after it, the root token still works, and the server is unsealed again."""

from __future__ import annotations

from pathlib import Path

import hvac

import devstack


def test_state_survives_a_restart(tmp_path: Path) -> None:
    server = devstack.start_openbao_server(tmp_path)
    try:
        client = hvac.Client(url=server.addr, token=server.root_token)
        client.sys.enable_secrets_engine("kv", path="secret", options={"version": "2"})
        client.secrets.kv.v2.create_or_update_secret("agents/a1/db", secret={"k": "v"}, mount_point="secret")
        pid = server.process.popen.pid if server.process else None

        server.restart()

        assert server.process is not None and server.process.popen.pid != pid
        assert server.restarts == 1
        assert client.sys.read_seal_status()["sealed"] is False
        read = client.secrets.kv.v2.read_secret_version(
            "agents/a1/db", mount_point="secret", raise_on_deleted_version=False
        )
        assert read["data"]["data"] == {"k": "v"}
    finally:
        server.stop()
    assert server.process is not None and server.process.popen.poll() is not None
