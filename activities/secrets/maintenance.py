"""AgentVault methods for the maintenance workflows: Transit encryption of agent data, key rotation, and the inventory
of agent-owned Vault state for the orphan sweep. A mixin of `AgentVault`; synchronous (hvac is).

Plaintext passes through `encrypt`/`decrypt` only; it is never logged and never part of an error message.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import hvac
import hvac.exceptions as hv

from activities.errors import SecretsRejected
from activities.secrets.errors import vault_errors
from activities.secrets.names import AgentNames
from activities.secrets.settings import VaultSettings
from activities.secrets.tokens import TokenFinder
from contracts.identifiers import KV_AGENTS_PREFIX, agent_of, is_agent_id

__all__ = ["Ciphertext", "TransitKeyInfo", "VaultInventory", "VaultMaintenance"]


@dataclass(frozen=True)
class Ciphertext:
    ciphertext: str = field(repr=False)
    key_version: int


@dataclass(frozen=True)
class TransitKeyInfo:
    latest_version: int
    min_decryption_version: int
    # Version -> creation time (Unix seconds, as Transit reports them).
    created: dict[int, int]


@dataclass
class VaultInventory:
    """Agent ids owning each kind of Vault state; values are how many of that kind (secrets and tokens can be >1)."""

    policies: dict[str, int] = field(default_factory=dict)
    roles: dict[str, int] = field(default_factory=dict)
    keys: dict[str, int] = field(default_factory=dict)
    secrets: dict[str, int] = field(default_factory=dict)
    tokens: dict[str, int] = field(default_factory=dict)

    def agent_ids(self) -> set[str]:
        return set(self.policies) | set(self.roles) | set(self.keys) | set(self.secrets) | set(self.tokens)


class VaultMaintenance:
    settings: VaultSettings
    _client: hvac.Client
    _tokens: TokenFinder

    def names(self, agent_id: str) -> AgentNames:
        raise NotImplementedError  # provided by AgentVault

    # --- Transit: agent data ---------------------------------------------------------------------------------------

    def encrypt(self, agent_id: str, plaintext: bytes) -> Ciphertext:
        """Encrypt with the agent's Transit key, at its latest version."""
        n = self.names(agent_id)
        mount = self.settings.transit_mount
        with vault_errors("write", f"{mount}/encrypt/{n.transit_key}"):
            data = self._client.secrets.transit.encrypt_data(
                n.transit_key, base64.b64encode(plaintext).decode("ascii"), mount_point=mount
            )["data"]
        return Ciphertext(data["ciphertext"], int(data.get("key_version") or _version_of(data["ciphertext"])))

    def decrypt(self, agent_id: str, ciphertext: str) -> bytes:
        """Plaintext of `ciphertext`; Vault refuses (SecretsRejected) one older than min_decryption_version."""
        n = self.names(agent_id)
        mount = self.settings.transit_mount
        with vault_errors("write", f"{mount}/decrypt/{n.transit_key}"):
            data = self._client.secrets.transit.decrypt_data(n.transit_key, ciphertext, mount_point=mount)["data"]
        return base64.b64decode(data["plaintext"])

    # --- Transit: rotation -----------------------------------------------------------------------------------------

    def transit_key(self, agent_id: str) -> TransitKeyInfo | None:
        """Versions of the agent's Transit key, or None when it has none."""
        n = self.names(agent_id)
        mount = self.settings.transit_mount
        with vault_errors("read", f"{mount}/keys/{n.transit_key}"):
            try:
                data = self._client.secrets.transit.read_key(n.transit_key, mount_point=mount)["data"]
            except hv.InvalidPath:
                return None
        created = {int(v): int(t) for v, t in (data.get("keys") or {}).items() if isinstance(t, int)}
        return TransitKeyInfo(int(data["latest_version"]), int(data["min_decryption_version"]), created)

    def rotate_key(self, agent_id: str) -> int:
        """Add a new version to the agent's Transit key; returns the new latest version."""
        n = self.names(agent_id)
        mount = self.settings.transit_mount
        with vault_errors("write", f"{mount}/keys/{n.transit_key}/rotate"):
            self._client.secrets.transit.rotate_key(n.transit_key, mount_point=mount)
        info = self.transit_key(agent_id)
        if info is None:  # deleted between the two calls (a concurrent destroy)
            raise SecretsRejected(f"vault read {mount}/keys/{n.transit_key}: key vanished after rotation")
        return info.latest_version

    def rewrap(self, agent_id: str, ciphertexts: Sequence[str]) -> list[Ciphertext | None]:
        """Re-encrypt to the latest key version without ever seeing plaintext; None for an item Vault refuses.

        One batch request; when Vault refuses the batch (one bad item fails it all), each item is retried alone so
        one unreadable ciphertext does not hold back the rest.
        """
        if not ciphertexts:
            return []
        n = self.names(agent_id)
        mount = self.settings.transit_mount
        transit = self._client.secrets.transit
        path = f"{mount}/rewrap/{n.transit_key}"
        with vault_errors("write", path):
            try:
                batch = [{"ciphertext": c} for c in ciphertexts]
                results = transit.rewrap_data(n.transit_key, None, batch_input=batch, mount_point=mount)
                return [_result(item) for item in results["data"]["batch_results"]]
            except hv.InvalidRequest:
                pass
        out: list[Ciphertext | None] = []
        for ciphertext in ciphertexts:
            with vault_errors("write", path):
                try:
                    out.append(_result(transit.rewrap_data(n.transit_key, ciphertext, mount_point=mount)["data"]))
                except hv.InvalidRequest:
                    out.append(None)
        return out

    def set_min_decryption_version(self, agent_id: str, version: int) -> None:
        """From now on Vault refuses ciphertexts older than `version` (never lowered here)."""
        n = self.names(agent_id)
        mount = self.settings.transit_mount
        with vault_errors("write", f"{mount}/keys/{n.transit_key}/config"):
            self._client.secrets.transit.update_key_configuration(
                n.transit_key, min_decryption_version=version, mount_point=mount
            )

    def agents_with_keys(self) -> list[str]:
        """Agent ids that have a Transit key, sorted."""
        mount = self.settings.transit_mount
        names = self._list(f"{mount}/keys", lambda: self._client.secrets.transit.list_keys(mount_point=mount))
        return sorted({a for a in map(agent_of, names) if a is not None})

    # --- inventory for the orphan sweep ----------------------------------------------------------------------------

    def inventory(self) -> VaultInventory:
        """Every agent id owning a policy, AppRole or certificate role, Transit key, KV folder or live token. LISTs
        only, plus one lookup per token not seen before (see TokenFinder)."""
        s = self.settings
        found = VaultInventory()
        with vault_errors("list", "sys/policy"):
            policies = (self._client.sys.list_policies().get("data") or {}).get("policies") or []
        found.policies = _ones(policies)
        roles = self._list(
            f"auth/{s.approle_mount}/role",
            lambda: self._client.auth.approle.list_roles(mount_point=s.approle_mount),
        )
        certificate_roles = self._list(
            f"{s.pki_mount}/roles",
            lambda: self._client.secrets.pki.list_roles(mount_point=s.pki_mount),
        )
        found.roles = _ones(roles)
        for agent_id in _ones(certificate_roles):
            found.roles[agent_id] = found.roles.get(agent_id, 0) + 1
        found.keys = dict.fromkeys(self.agents_with_keys(), 1)
        folders = self._list(
            f"{s.kv_mount}/metadata/{KV_AGENTS_PREFIX}",
            lambda: self._client.secrets.kv.v2.list_secrets(KV_AGENTS_PREFIX, mount_point=s.kv_mount),
        )
        found.secrets = _ones(folders, name_of=_kv_folder)
        found.tokens = {a: c for a, c in self._tokens.owners().items() if is_agent_id(a)}
        return found

    def _list(self, path: str, call: Callable[[], dict[str, Any]]) -> list[str]:
        with vault_errors("list", path):
            try:
                resp = call()
            except hv.InvalidPath:
                return []  # nothing there yet: Vault answers a LIST of an empty path with 404
        return list((resp.get("data") or {}).get("keys") or [])


def _ones(names: Sequence[str], name_of: Callable[[str], str | None] = agent_of) -> dict[str, int]:
    return {a: 1 for a in map(name_of, names) if a is not None}


def _kv_folder(name: str) -> str | None:
    """The agent id of a KV folder `<id>/` under `agents/`; None for anything that is not ours."""
    agent_id = name.removesuffix("/")
    return agent_id if is_agent_id(agent_id) else None


def _version_of(ciphertext: str) -> int:
    # "vault:v3:..." -> 3
    return int(ciphertext.split(":", 2)[1].removeprefix("v"))


def _result(item: dict[str, Any]) -> Ciphertext | None:
    if item.get("error") or not item.get("ciphertext"):
        return None
    return Ciphertext(item["ciphertext"], int(item.get("key_version") or _version_of(item["ciphertext"])))
