"""A warm pool VM's Vault identity: mint, bootstrap, claim delivery, destroy, and count what is left. Sync (hvac is).

One pool VM (slot `pv…`) owns, all named `lobstack-pool-<slot>` (`contracts.pool.pool_vault_name`):
- an ACL policy that can read its claim at `<kv>/data/pool/<slot>/claim` and nothing else;
- an AppRole role with that policy and the agents' role settings (single-use SecretIDs, short token TTL);
- its tokens: the wrapping token of its bootstrap SecretID until the bridge unwraps it, then its login token;
- its claim, once a lifecycle claimed it: the agent's identity fields (`contracts.pool.CLAIM_FIELDS`), including the
  agent's single-use wrapped SecretID.
"""

from __future__ import annotations

import logging
from typing import Any

import hvac
import hvac.exceptions as hv

from activities.errors import SecretsRejected
from activities.secrets.agent_vault import ROLE_SETTINGS
from activities.secrets.errors import vault_errors, vault_path_exists
from activities.secrets.policy import render_pool_policy
from activities.secrets.settings import VaultSettings
from activities.secrets.tokens import TokenFinder
from contracts.bootstrap import BootstrapConfig
from contracts.identifiers import is_agent_id
from contracts.models import Residue
from contracts.pool import (
    CLAIM_FIELDS,
    POOL_KV_PREFIX,
    POOL_VAULT_PREFIX,
    SLOT_RULE,
    claim_path,
    is_slot,
    pool_vault_name,
)

__all__ = ["PoolVault", "slot_of_name", "slot_of_token"]

log = logging.getLogger(__name__)


def slot_of_name(name: object) -> str | None:
    """The slot in a pool identity's Vault name (`lobstack-pool-<slot>`); None for anything else."""
    if not isinstance(name, str) or not name.startswith(POOL_VAULT_PREFIX):
        return None
    slot = name[len(POOL_VAULT_PREFIX) :]
    return slot if is_slot(slot) else None


def slot_of_token(lookup: dict[str, Any], approle_mount: str) -> str | None:
    """The slot a token belongs to, from its lookup-accessor data (as `tokens.owner_of` does for agents): a login of
    the pool role, a not yet unwrapped SecretID of it (its creation path), or anything holding the pool policy."""
    meta = lookup.get("meta") or {}
    path = str(lookup.get("path") or "")
    if path == f"auth/{approle_mount}/login" and (slot := slot_of_name(meta.get("role_name"))) is not None:
        return slot
    prefix, suffix = f"auth/{approle_mount}/role/", "/secret-id"
    if path.startswith(prefix) and path.endswith(suffix) and (slot := slot_of_name(path[len(prefix) : -len(suffix)])):
        return slot
    for policy in lookup.get("policies") or ():
        if (slot := slot_of_name(policy)) is not None:
            return slot
    return None


class PoolVault:
    """Every pool VM's Vault identity. Build once per worker; methods are safe to call from several threads."""

    def __init__(self, settings: VaultSettings, *, client: hvac.Client | None = None) -> None:
        self.settings = settings
        self._client = client or settings.client()
        self._tokens = TokenFinder(self._client, settings.approle_mount, owner=slot_of_token)

    @classmethod
    def from_env(cls) -> PoolVault:
        return cls(VaultSettings.from_env())

    def close(self) -> None:
        self._client.adapter.close()

    # --- names -------------------------------------------------------------------------------------------------

    @staticmethod
    def _name(slot: str) -> str:
        # Checked again here although the workflow made the slot: it is spliced into policy text and paths.
        if not is_slot(slot):
            raise SecretsRejected(f"slot: must be {SLOT_RULE}")
        return pool_vault_name(slot)

    def _role_path(self, name: str) -> str:
        return f"auth/{self.settings.approle_mount}/role/{name}"

    def _claim_metadata_path(self, slot: str) -> str:
        return f"{self.settings.kv_mount}/metadata/{claim_path(slot)}"

    # --- mint and bootstrap ------------------------------------------------------------------------------------

    def mint_pool_identity(self, slot: str) -> None:
        """The pool VM's policy (read its claim, nothing else) and AppRole role. A retry changes nothing."""
        name = self._name(slot)
        with vault_errors("write", f"sys/policies/acl/{name}"):
            self._client.sys.create_or_update_policy(name, render_pool_policy(slot, self.settings))
        with vault_errors("write", self._role_path(name)):
            self._client.auth.approle.create_or_update_approle(
                name, token_policies=[name], mount_point=self.settings.approle_mount, **ROLE_SETTINGS
            )
        log.info("minted pool identity of slot %s", slot)

    def issue_pool_bootstrap(self, slot: str) -> BootstrapConfig:
        """A fresh single-use, response-wrapped SecretID of the pool role, for the pool VM's user-data.

        The identity must exist (`mint_pool_identity`): this never creates it, so an attempt that outlives the pool
        identity's destroy fails (SecretsRejected) instead of bringing it back. Like `AgentVault.issue_bootstrap`, the
        only place this wrapped token exists on our side: never logged, returned from an activity or put in history.
        """
        name = self._name(slot)
        s = self.settings
        secret_id_path = f"{self._role_path(name)}/secret-id"
        with vault_errors("read", f"{self._role_path(name)}/role-id"):
            role_id = self._client.auth.approle.read_role_id(name, mount_point=s.approle_mount)["data"]["role_id"]
        with vault_errors("write", secret_id_path):
            resp = self._client.auth.approle.generate_secret_id(
                name, metadata={"pool_slot": slot}, mount_point=s.approle_mount, wrap_ttl=f"{s.wrap_ttl_s}s"
            )
        wrap = resp.get("wrap_info") or {}
        if not wrap.get("token"):
            raise SecretsRejected(f"vault write {secret_id_path}: response was not wrapped")
        if wrap.get("creation_path") != secret_id_path:
            raise SecretsRejected(f"vault write {secret_id_path}: wrapped at an unexpected path")
        log.info("issued pool bootstrap credential for slot %s (ttl %ss)", slot, wrap.get("ttl"))
        return BootstrapConfig(
            agent_id=slot,
            vault_addr=s.bootstrap_addr,
            role_id=role_id,
            wrapped_secret_id=wrap["token"],
            expected_creation_path=secret_id_path,
            approle_mount=s.approle_mount,
            kv_mount=s.kv_mount,
            pool_slot=slot,
        )

    # --- claim -------------------------------------------------------------------------------------------------

    def deliver_claim(self, slot: str, agent: BootstrapConfig) -> None:
        """Write the agent's identity fields where only the slot's VM can read them.

        A plain write, not check-and-set: a retried delivery comes with a fresh wrapped SecretID (each attempt mints
        one) and the newest must win. A bridge that already took an older one is the agent by then and never reads
        again; the token it did not take expires unused within the wrap TTL (and the agent's destroy revokes it). With
        cas=0 a retry could not replace a claim whose token expired before the bridge read it, and this service cannot
        read a claim back to tell (its policy writes claims, never reads them).
        """
        self._name(slot)
        if not is_agent_id(agent.agent_id) or agent.pool_slot:
            raise SecretsRejected("deliver_claim: the bootstrap is not an agent's")
        path = claim_path(slot)
        data = {field: getattr(agent, field) for field in CLAIM_FIELDS}
        with vault_errors("write", f"{self.settings.kv_mount}/data/{path}"):
            self._client.secrets.kv.v2.create_or_update_secret(path, data, mount_point=self.settings.kv_mount)
        log.info("delivered the claim of agent %s to slot %s", agent.agent_id, slot)

    # --- destroy and residue -----------------------------------------------------------------------------------

    def destroy_pool_identity(self, slot: str) -> Residue:
        """Remove everything of the pool VM's identity; returns what was there. Everything already gone is success.

        The role goes first so no new login can happen, then its tokens (a deleted role leaves them alive), the
        policy, and the claim (all its versions).
        """
        name = self._name(slot)
        s = self.settings
        found = Residue()

        found.roles = int(self._role_exists(name))
        with vault_errors("delete", self._role_path(name)):
            self._client.auth.approle.delete_role(name, mount_point=s.approle_mount)

        accessors = self._tokens.accessors_owned_by(slot)
        for accessor in accessors:
            self._tokens.revoke(accessor)
        found.tokens = len(accessors)

        found.policies = int(self._policy_exists(name))
        with vault_errors("delete", f"sys/policies/acl/{name}"):
            self._client.sys.delete_policy(name)

        found.secrets = int(self._claim_exists(slot))
        if found.secrets:
            with vault_errors("delete", self._claim_metadata_path(slot)):
                self._client.secrets.kv.v2.delete_metadata_and_all_versions(claim_path(slot), mount_point=s.kv_mount)

        log.info("destroyed pool identity of slot %s (found %s)", slot, found)
        return found

    def pool_residue(self, slot: str) -> Residue:
        """Count what is left of the pool VM's identity; vms and keys stay 0 here (it has no Transit key)."""
        name = self._name(slot)
        return Residue(
            secrets=int(self._claim_exists(slot)),
            policies=int(self._policy_exists(name)),
            roles=int(self._role_exists(name)),
            tokens=len(self._tokens.accessors_owned_by(slot)),
        )

    def list_pool_slots(self) -> list[str]:
        """Slots that still have a role, a policy or a claim in Vault: what the orphan sweep checks against the live
        pools. (A token outliving all three dies at its TTL, one hour at most.)"""
        s = self.settings
        slots: set[str] = set()
        with vault_errors("list", f"auth/{s.approle_mount}/role"):
            try:
                roles = self._client.auth.approle.list_roles(mount_point=s.approle_mount)
            except hv.InvalidPath:
                roles = {}
        slots.update(_slots_in((roles.get("data") or {}).get("keys")))
        with vault_errors("list", "sys/policy"):
            policies = self._client.sys.list_policies()
        slots.update(_slots_in((policies.get("data") or policies).get("policies")))
        with vault_errors("list", f"{s.kv_mount}/metadata/{POOL_KV_PREFIX}"):
            try:
                claims = self._client.secrets.kv.v2.list_secrets(POOL_KV_PREFIX, mount_point=s.kv_mount)
            except hv.InvalidPath:
                claims = {}
        folders = (claims.get("data") or {}).get("keys") or []
        slots.update(f[:-1] for f in folders if isinstance(f, str) and f.endswith("/") and is_slot(f[:-1]))
        return sorted(slots)

    def _claim_exists(self, slot: str) -> bool:
        kv, mount = self._client.secrets.kv.v2, self.settings.kv_mount
        return self._exists(
            self._claim_metadata_path(slot), lambda: kv.read_secret_metadata(claim_path(slot), mount_point=mount)
        )

    def _policy_exists(self, name: str) -> bool:
        return self._exists(f"sys/policies/acl/{name}", lambda: self._client.sys.read_policy(name))

    def _role_exists(self, name: str) -> bool:
        mount = self.settings.approle_mount
        return self._exists(self._role_path(name), lambda: self._client.auth.approle.read_role(name, mount_point=mount))

    _exists = staticmethod(vault_path_exists)


def _slots_in(names: object) -> list[str]:
    if not isinstance(names, list):
        return []
    return [slot for name in names if (slot := slot_of_name(name)) is not None]
