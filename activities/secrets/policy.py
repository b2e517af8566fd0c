"""The per-agent ACL policy. The one renderer: deploy/ keeps a copy that a test compares with this text."""

from __future__ import annotations

from activities.secrets.names import AgentNames
from activities.secrets.settings import VaultSettings


def render_agent_policy(agent_id: str, settings: VaultSettings) -> str:
    """Read its own KV secrets, list them, encrypt/decrypt with its own Transit key; nothing else."""
    n = AgentNames.of(agent_id, settings)
    kv, prefix, key = n.kv_mount, n.kv_prefix, n.transit_key
    return (
        f"# Lobstack agent {n.agent_id}: its own secrets and Transit key, nothing else.\n"
        f'path "{kv}/data/{prefix}*" {{\n  capabilities = ["read"]\n}}\n\n'
        f'path "{kv}/metadata/{prefix}" {{\n  capabilities = ["list"]\n}}\n\n'
        f'path "{kv}/metadata/{prefix}*" {{\n  capabilities = ["read", "list"]\n}}\n\n'
        f'path "{n.transit_mount}/encrypt/{key}" {{\n  capabilities = ["update"]\n}}\n\n'
        f'path "{n.transit_mount}/decrypt/{key}" {{\n  capabilities = ["update"]\n}}\n'
    )
