"""The Temporal activities of the secrets package: plain `def`, run in the worker's thread pool (hvac is sync)."""

from __future__ import annotations

from temporalio import activity

from activities.errors import SecretsLeftBehind
from activities.secrets.agent_vault import AgentVault
from contracts.models import AgentRef, Residue, SecretRefs


def describe(residue: Residue) -> str:
    return (
        f"secrets={residue.secrets} policies={residue.policies} roles={residue.roles} "
        f"keys={residue.keys} tokens={residue.tokens}"
    )


class SecretsActivities:
    def __init__(self, vault: AgentVault) -> None:
        self.vault = vault

    @activity.defn
    def mint_secrets(self, ref: AgentRef) -> SecretRefs:
        refs = self.vault.mint(ref.agent_id, account_id=ref.account_id)
        activity.logger.info("minted secrets of agent %s: policy %s, role %s", ref.agent_id, refs.policy, refs.role)
        return refs

    @activity.defn
    def destroy_secrets(self, ref: AgentRef) -> Residue:
        """Delete everything of the agent and revoke its tokens; returns what was there before."""
        found = self.vault.destroy(ref.agent_id)
        activity.logger.info("destroyed secrets of agent %s: %s", ref.agent_id, describe(found))
        return found

    @activity.defn
    def verify_secrets_gone(self, ref: AgentRef) -> Residue:
        left = self.vault.residue(ref.agent_id)
        if left.total:
            raise SecretsLeftBehind(f"agent {ref.agent_id} still has Vault state: {describe(left)}")
        return left

    @activity.defn
    def revoke_agent_tokens(self, ref: AgentRef) -> int:
        """Revoke the agent's live tokens only (a VM replacement); returns how many were revoked."""
        revoked = self.vault.revoke_tokens(ref.agent_id)
        activity.logger.info("revoked %d token(s) of agent %s", revoked, ref.agent_id)
        return revoked
