"""The per-agent and per-pool-VM ACL policies. The one renderer: deploy/ keeps a copy of the agent's, which a test
compares with this text."""

from __future__ import annotations

from activities.secrets.names import AgentNames
from activities.secrets.settings import VaultSettings
from contracts.pool import claim_path


def render_agent_policy(agent_id: str, settings: VaultSettings) -> str:
    """Read its own KV secrets, list them, encrypt/decrypt with its own Transit key, issue its own TLS certificate
    (the role allows only its name); nothing else."""
    n = AgentNames.of(agent_id, settings)
    kv, prefix, key = n.kv_mount, n.kv_prefix, n.transit_key
    return (
        f"# Lobstack agent {n.agent_id}: its own secrets, Transit key and certificate, nothing else.\n"
        f'path "{kv}/data/{prefix}*" {{\n  capabilities = ["read"]\n}}\n\n'
        f'path "{kv}/metadata/{prefix}" {{\n  capabilities = ["list"]\n}}\n\n'
        f'path "{kv}/metadata/{prefix}*" {{\n  capabilities = ["read", "list"]\n}}\n\n'
        f'path "{n.transit_mount}/encrypt/{key}" {{\n  capabilities = ["update"]\n}}\n\n'
        f'path "{n.transit_mount}/decrypt/{key}" {{\n  capabilities = ["update"]\n}}\n\n'
        f'path "{n.issue_path}" {{\n  capabilities = ["update"]\n}}\n'
    )


def render_pool_policy(slot: str, settings: VaultSettings) -> str:
    """A warm pool VM's identity: read its own claim, nothing else (no list, no metadata, no other path).

    The slot is spliced into policy text: callers validate it first (`contracts.pool.is_slot`).
    """
    return (
        f"# Lobstack pool VM {slot}: its claim, nothing else.\n"
        f'path "{settings.kv_mount}/data/{claim_path(slot)}" {{\n  capabilities = ["read"]\n}}\n'
    )
