"""Cloud-init user-data that carries an agent's bootstrap config to its VM.

The config travels base64-encoded inside `write_files`, so no value in it (names, addresses, the wrapped token) can
break the YAML or reach a shell: cloud-init decodes it to a root-only file and the bridge reads that file.

Cloud-init also creates the system user `lobstack-agent`, which the agent's own process runs as. The bridge (root)
serves `/health` to the orchestrator on every interface at port 8787, and the agent API only on the Unix socket
`/run/lobstack/agent.sock`, owned by `lobstack-agent`, mode 0600, answering that user's processes only
(`bridge.agent_api`).
"""

from __future__ import annotations

import base64

from activities.errors import ProviderRejected
from contracts.bootstrap import AGENT_USER, BOOTSTRAP_PATH, BootstrapConfig
from contracts.regions import USER_DATA_LIMITS


def render_cloud_init(bootstrap: BootstrapConfig) -> str:
    payload = base64.b64encode(bootstrap.to_json().encode()).decode()
    return (
        "#cloud-config\n"
        "users:\n"
        "  - default\n"
        f"  - name: {AGENT_USER}\n"
        "    system: true\n"
        "    shell: /usr/sbin/nologin\n"
        "    lock_passwd: true\n"
        "write_files:\n"
        f"  - path: {BOOTSTRAP_PATH}\n"
        "    owner: root:root\n"
        '    permissions: "0600"\n'
        "    encoding: b64\n"
        f"    content: {payload}\n"
        "runcmd:\n"
        f"  - [python3, -m, bridge, --config, {BOOTSTRAP_PATH}]\n"
    )


def check_size(provider: str, user_data: str) -> None:
    """Refuse user-data over the provider's limit before any API call (not retryable: it will not shrink)."""
    limit = USER_DATA_LIMITS[provider]
    size = len(user_data.encode())
    if size > limit:
        raise ProviderRejected(f"user_data: {size} bytes is over {provider}'s limit of {limit} bytes")
