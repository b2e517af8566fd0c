"""Per-agent secrets in Vault / OpenBao: KV v2 secrets, an ACL policy, an AppRole role and a Transit key per agent.

`AgentVault` does the work (sync, hvac); `SecretsActivities` exposes it to Temporal. The wrapped bootstrap credential
comes only from `AgentVault.issue_bootstrap`, called in-process by whoever hands it to the VM; it is never an activity
result, so it never reaches workflow history.

`PoolVault` does the same for a warm pool VM's identity (a policy reading its claim only, an AppRole role, the claim);
`PoolSecretsActivities` exposes it, and delivers a claim: the agent's wrapped SecretID minted inside the activity.
"""

from activities.secrets.activities import SecretsActivities, describe
from activities.secrets.agent_vault import ROLE_SETTINGS, TRANSIT_AUTO_ROTATE, TRANSIT_KEY_TYPE, AgentVault
from activities.secrets.errors import translate, vault_errors
from activities.secrets.names import AgentNames
from activities.secrets.policy import render_agent_policy, render_pool_policy
from activities.secrets.pool_activities import PoolSecretsActivities
from activities.secrets.pool_vault import PoolVault
from activities.secrets.settings import MAX_WRAP_TTL_S, VaultSettings, from_env
from activities.secrets.tokens import TokenFinder, owner_of

__all__ = [
    "MAX_WRAP_TTL_S",
    "ROLE_SETTINGS",
    "TRANSIT_AUTO_ROTATE",
    "TRANSIT_KEY_TYPE",
    "AgentNames",
    "AgentVault",
    "PoolSecretsActivities",
    "PoolVault",
    "SecretsActivities",
    "TokenFinder",
    "VaultSettings",
    "describe",
    "from_env",
    "owner_of",
    "render_agent_policy",
    "render_pool_policy",
    "translate",
    "vault_errors",
]
