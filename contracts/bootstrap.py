"""The bootstrap config a VM receives (through cloud-init user-data, or a file for the local provider).

It carries the Vault address, the gateway address, the agent's AppRole role id and a response-wrapped SecretID: a
single-use token with a TTL of at most ten minutes. The bridge checks the wrapping token's creation path before
unwrapping, so a token minted for another path (or already unwrapped by an interceptor) is refused and reported.

It also says where the bridge listens: `/health` for the orchestrator on `listen_host:listen_port`, and the agent's
own API on the Unix socket `agent_socket`, for processes of `agent_user` only (`bridge.agent_api`).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from contracts.identifiers import DEFAULT_KV_MOUNT

# Where cloud-init writes the config on a VM (root-only, 0600) and the bridge reads it.
BOOTSTRAP_PATH = "/etc/lobstack/bootstrap.json"
# Agents' bridges serve GET /health (only) here on their VM; the health check probes http://<public ip>:<port>/health.
BRIDGE_PORT = 8787
# The agent API: a Unix socket on the VM, for the agent's user only. Never a network port.
AGENT_SOCKET = "/run/lobstack/agent.sock"
AGENT_USER = "lobstack-agent"

# The longest `agent_socket` the bridge can bind: sun_path is 108 bytes on Linux, one of them the terminating NUL.
MAX_SOCKET_PATH_BYTES = 107


@dataclass(frozen=True)
class BootstrapConfig:
    agent_id: str
    vault_addr: str
    role_id: str
    wrapped_secret_id: str
    # Where Vault must say the wrapped response was created; anything else means tampering.
    expected_creation_path: str
    approle_mount: str = "approle"
    kv_mount: str = DEFAULT_KV_MOUNT
    kv_prefix: str = ""
    listen_host: str = "127.0.0.1"
    listen_port: int = 0
    # The bridge writes its bound address here (local provider), so a port is never guessed or raced for.
    address_file: str = ""
    # The agent-facing API (POST /tools/{tool}/authorize, `bridge.agent_api`) is served on this Unix socket, and only
    # to processes of `agent_user` (a name, a numeric uid, or empty for the bridge's own user). Empty path: no agent
    # API, so no tool can be authorized. The listener above serves GET /health only.
    agent_socket: str = ""
    agent_user: str = ""
    # The gateway the bridge asks for its skills and approvals, with its own Vault token. Empty: no gateway, and then
    # no tool is enabled (POST /tools/{tool}/authorize refuses everything).
    gateway_url: str = ""
    # How often the bridge re-reads its skills, and how long it trusts the last ones while the gateway is unreachable.
    skills_poll_s: float = 2.0
    skills_stale_s: float = 60.0
    # How long one authorize call waits for a human before answering "pending" (ask again with the same request_id).
    authorize_wait_s: float = 300.0
    # Set on a warm pool's VM (contracts.pool): `agent_id` is then the slot, the role is the pool identity's, and the
    # bridge waits for its claim at `claim_path(pool_slot)` before it becomes an agent. Empty: an agent's own VM.
    pool_slot: str = ""
    # How often a pool VM's bridge looks for its claim when nobody pokes it (POST /claim wakes it at once).
    claim_poll_s: float = 5.0

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> BootstrapConfig:
        raw = json.loads(text)
        known = {k: v for k, v in raw.items() if k in cls.__dataclass_fields__}
        return cls(**known)

    @classmethod
    def load(cls, path: Path) -> BootstrapConfig:
        return cls.from_json(path.read_text(encoding="utf-8"))

    def __repr__(self) -> str:
        # Never print the wrapped token, even though it is single-use.
        return f"BootstrapConfig(agent_id={self.agent_id!r}, vault_addr={self.vault_addr!r})"
