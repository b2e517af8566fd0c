"""Find every live token an agent was issued, so destroy can revoke them.

Deleting an AppRole role (or its policy) does not revoke the tokens it issued, and Vault has no "tokens of a role"
index. The tokens of an agent are:
- login tokens: `meta.role_name == agent-<id>` (AppRole sets it), and our SecretID metadata adds `agent_id`;
- wrapping tokens of a not yet unwrapped SecretID: no metadata, but `path` is the creation path
  `auth/<approle>/role/agent-<id>/secret-id` (lookup-accessor shows it);
- anything else carrying the agent's policy.

Cost: one LIST of auth/token/accessors (sudo) per scan, then one lookup-accessor per accessor this process has not
seen yet. A token's metadata, path and policies never change, so each accessor's owner is cached for the life of the
worker and a destroy costs the LIST plus the lookups of tokens issued since the previous scan, instead of a lookup of
every token in the cluster. Recording accessors at issue time would miss login tokens, which only the VM sees.
"""

from __future__ import annotations

import threading
from typing import Any

import hvac
import hvac.exceptions as hv

from activities.secrets.errors import vault_errors
from activities.secrets.names import AgentNames

_ACCESSORS_PATH = "auth/token/accessors"
_MAX_CACHE = 200_000


def owner_of(lookup: dict[str, Any], approle_mount: str) -> str | None:
    """The agent id a token belongs to, from its lookup-accessor data; None for anything not ours."""
    meta = lookup.get("meta") or {}
    role = meta.get("role_name") or ""
    if role.startswith("agent-") and lookup.get("path") == f"auth/{approle_mount}/login":
        return role.removeprefix("agent-")
    path = lookup.get("path") or ""
    prefix, suffix = f"auth/{approle_mount}/role/agent-", "/secret-id"
    if path.startswith(prefix) and path.endswith(suffix):
        return path[len(prefix) : -len(suffix)]
    for policy in lookup.get("policies") or ():
        if policy.startswith("agent-"):
            return policy.removeprefix("agent-")
    return None


def _accessor_outlived_token(exc: hv.Forbidden) -> bool:
    """Vault answers a lookup-accessor whose token entry is already gone with 403 "bad token", not 400: the accessor
    is removed after the token during a revocation, and a revocation cut short (a restart) can leave it dangling until
    `auth/token/tidy`. Such an accessor names no usable token. A real permission problem says "permission denied"."""
    return any("bad token" in str(error) for error in exc.errors or ())


class TokenFinder:
    """Maps live accessors to agent ids, remembering what it already looked up. Thread-safe."""

    def __init__(self, client: hvac.Client, approle_mount: str) -> None:
        self._client = client
        self._approle_mount = approle_mount
        self._owners: dict[str, str | None] = {}
        self._lock = threading.Lock()

    def accessors_of(self, names: AgentNames) -> list[str]:
        """Accessors of the agent's live tokens (login and wrapping tokens)."""
        with vault_errors("list", _ACCESSORS_PATH):
            resp = self._client.auth.token.list_accessors()
        live = list((resp.get("data") or {}).get("keys") or [])
        live_set = set(live)
        with self._lock:
            # Forget accessors that no longer exist, so the cache only ever holds the cluster's live tokens.
            self._owners = {a: o for a, o in self._owners.items() if a in live_set}
            unknown = [a for a in live if a not in self._owners]
        found = {accessor: self._lookup_owner(accessor) for accessor in unknown}
        with self._lock:
            if len(self._owners) + len(found) <= _MAX_CACHE:
                self._owners.update(found)
            owners = {**self._owners, **found}
        return [a for a in live if owners.get(a) == names.agent_id]

    def _lookup_owner(self, accessor: str) -> str | None:
        with vault_errors("lookup-accessor", "auth/token/lookup-accessor"):
            try:
                resp = self._client.auth.token.lookup_accessor(accessor)
            except (hv.InvalidRequest, hv.InvalidPath):
                return None  # expired or revoked between the LIST and the lookup: gone, and nobody's
            except hv.Forbidden as exc:
                if not _accessor_outlived_token(exc):
                    raise
                return None
        return owner_of(resp.get("data") or {}, self._approle_mount)

    def revoke(self, accessor: str) -> None:
        # An accessor revoked meanwhile answers 200 with a warning: nothing to do.
        with vault_errors("revoke-accessor", "auth/token/revoke-accessor"):
            self._client.auth.token.revoke_accessor(accessor)
        with self._lock:
            self._owners.pop(accessor, None)

    def owners(self) -> dict[str, int]:
        """Live tokens per agent id, over every token in the cluster (the orphan sweep's view of tokens)."""
        with vault_errors("list", _ACCESSORS_PATH):
            resp = self._client.auth.token.list_accessors()
        live = list((resp.get("data") or {}).get("keys") or [])
        with self._lock:
            known = {a: self._owners[a] for a in live if a in self._owners}
        known.update({a: self._lookup_owner(a) for a in live if a not in known})
        with self._lock:
            if len(self._owners) + len(known) <= _MAX_CACHE:
                self._owners.update(known)
        counts: dict[str, int] = {}
        for owner in known.values():
            if owner is not None:
                counts[owner] = counts.get(owner, 0) + 1
        return counts
