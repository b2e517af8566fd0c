"""The Temporal activities of warm pool identities: plain `def`, run in the worker's thread pool (hvac is sync).

The agent's wrapped SecretID of a claim is minted inside `deliver_claim` and written to the slot's claim path in the
same attempt: it is never an activity result, never logged, never in history.
"""

from __future__ import annotations

from dataclasses import replace

import httpx
from temporalio import activity

from activities.errors import SecretsLeftBehind
from activities.secrets.activities import describe
from activities.secrets.agent_vault import AgentVault
from activities.secrets.pool_vault import PoolVault
from contracts.models import Residue
from contracts.pool import DeliverClaim

__all__ = ["CLAIM_POKE_TIMEOUT_S", "PoolSecretsActivities"]

# The poke only saves the bridge its next poll (BootstrapConfig.claim_poll_s): not worth waiting long for.
CLAIM_POKE_TIMEOUT_S = 2.0


class PoolSecretsActivities:
    def __init__(
        self,
        vault: AgentVault,
        pools: PoolVault,
        *,
        gateway_url: str = "",
        poke_timeout_s: float = CLAIM_POKE_TIMEOUT_S,
    ) -> None:
        self.vault = vault
        self.pools = pools
        # The gateway the agent's bridge should ask for its skills (as CloudActivities puts it in a cold bootstrap).
        self.gateway_url = gateway_url
        self.poke_timeout = httpx.Timeout(poke_timeout_s, connect=min(poke_timeout_s, 1.0))
        # One client for every poke: making one costs tens of ms of CPU (its TLS context), more than the poke.
        self._http = httpx.Client(timeout=self.poke_timeout, trust_env=False, limits=httpx.Limits(max_connections=None))

    @activity.defn
    def mint_pool_identity(self, slot: str) -> None:
        self.pools.mint_pool_identity(slot)

    @activity.defn
    def deliver_claim(self, request: DeliverClaim) -> None:
        """Mint the agent's single-use wrapped SecretID, write it to the slot's claim, then wake the bridge.

        The poke is a wake-up only: a bridge that does not answer still finds its claim at its next poll, so a failed
        poke is logged and the delivery counts as done.
        """
        bootstrap = self.vault.issue_bootstrap(request.agent_id)
        if self.gateway_url:
            bootstrap = replace(bootstrap, gateway_url=self.gateway_url)
        self.pools.deliver_claim(request.slot, bootstrap)
        del bootstrap
        self._poke(request)

    def _poke(self, request: DeliverClaim) -> None:
        if not request.address:
            activity.logger.info("slot %s has no address: its bridge finds its claim at its next poll", request.slot)
            return
        # A VM's address is its bridge's base URL (VMRef.address, as the health probe uses it); a bare host:port too.
        base = request.address if "://" in request.address else f"http://{request.address}"
        url = f"{base.rstrip('/')}/claim"
        try:
            answer = self._http.post(url)
        except httpx.HTTPError as exc:
            activity.logger.warning(
                "claim poke of slot %s at %s failed (%s): its bridge polls", request.slot, url, type(exc).__name__
            )
            return
        if answer.status_code != 202:
            activity.logger.warning(
                "claim poke of slot %s at %s answered %d: its bridge polls", request.slot, url, answer.status_code
            )

    @activity.defn
    def destroy_pool_identity(self, slot: str) -> Residue:
        """Delete the pool VM's role, tokens, policy and claim; returns what was there before."""
        found = self.pools.destroy_pool_identity(slot)
        activity.logger.info("destroyed pool identity of slot %s: %s", slot, describe(found))
        return found

    @activity.defn
    def verify_pool_identity_gone(self, slot: str) -> Residue:
        left = self.pools.pool_residue(slot)
        if left.total:
            raise SecretsLeftBehind(f"pool slot {slot} still has Vault state: {describe(left)}")
        return left
