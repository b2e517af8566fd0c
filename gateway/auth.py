"""Who is calling: a bridge proves it is agent X by presenting agent X's own Vault token.

The gateway asks Vault `auth/token/lookup-self` WITH that token, so only a live token its holder possesses passes (a
revoked or expired one is refused by Vault itself). The agent id comes from what Vault says about the token, never from
the request: `meta.role_name = agent-<id>` (set by the AppRole login), issued by `auth/<approle>/login`, and carrying
the policy `agent-<id>`.

Caching: a positive answer is kept for `auth_cache_s` (default 5 s), keyed by a SHA-256 of the token so the cache never
holds a token itself. A revoked token therefore keeps working at most that long; refusals are never cached.
"""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass

import httpx

from contracts.identifiers import agent_of, vault_name

log = logging.getLogger(__name__)

_MAX_CACHE = 10_000


class AuthError(Exception):
    """Refused; `status` is the HTTP status to answer and the message is safe to return (it never holds the token)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class AgentIdentity:
    agent_id: str
    accessor: str

    @property
    def principal(self) -> str:
        return vault_name(self.agent_id)


def bearer_token(header: str) -> str:
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise AuthError(401, "missing bearer token")
    if len(token) > 512 or not token.isascii() or not token.isprintable():
        raise AuthError(401, "invalid token")
    return token


def identity_of(data: dict[str, object], approle_mount: str) -> AgentIdentity:
    """The agent a token belongs to, from its lookup-self data; AuthError(403) for any token that is not an agent's."""
    meta = data.get("meta")
    role = (meta or {}).get("role_name", "") if isinstance(meta, dict) else ""
    agent_id = agent_of(role)
    if agent_id is None:
        raise AuthError(403, "not an agent token")
    # Only an AppRole login sets role_name; a token minted elsewhere with the same metadata is not the agent.
    if data.get("path") != f"auth/{approle_mount}/login":
        raise AuthError(403, "not an agent token")
    policies = data.get("policies") or []
    if not isinstance(policies, list) or vault_name(agent_id) not in policies:
        raise AuthError(403, "token does not carry the agent's policy")
    return AgentIdentity(agent_id=agent_id, accessor=str(data.get("accessor") or ""))


class VaultAuthenticator:
    def __init__(
        self,
        vault_addr: str,
        *,
        approle_mount: str = "approle",
        cache_s: float = 5.0,
        timeout_s: float = 5.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._approle_mount = approle_mount
        self._cache_s = cache_s
        self._http = httpx.AsyncClient(base_url=vault_addr.rstrip("/"), timeout=timeout_s, transport=transport)
        self._cache: dict[str, tuple[float, AgentIdentity]] = {}

    async def aclose(self) -> None:
        await self._http.aclose()

    async def authenticate(self, authorization: str) -> AgentIdentity:
        token = bearer_token(authorization)
        key = hashlib.sha256(token.encode()).hexdigest()
        now = time.monotonic()
        cached = self._cache.get(key)
        if cached is not None and cached[0] > now:
            return cached[1]
        data = await self._lookup_self(token)
        identity = identity_of(data, self._approle_mount)
        ttl = data.get("ttl")
        # Never trust a cached answer past the token's own expiry.
        window = min(self._cache_s, float(ttl)) if isinstance(ttl, int) and ttl > 0 else self._cache_s
        if window > 0:
            if len(self._cache) >= _MAX_CACHE:
                self._cache = {k: v for k, v in self._cache.items() if v[0] > now}
            if len(self._cache) < _MAX_CACHE:
                self._cache[key] = (now + window, identity)
        return identity

    async def _lookup_self(self, token: str) -> dict[str, object]:
        try:
            resp = await self._http.get("/v1/auth/token/lookup-self", headers={"X-Vault-Token": token})
        except httpx.HTTPError as exc:
            log.warning("vault token lookup failed: %s", type(exc).__name__)
            raise AuthError(503, "vault unavailable") from None
        if resp.status_code in (401, 403):
            # Vault says 403 "permission denied" for a revoked, expired or unknown token.
            raise AuthError(401, "invalid token")
        if resp.status_code != 200:
            log.warning("vault token lookup answered %d", resp.status_code)
            raise AuthError(503, "vault unavailable")
        try:
            data = resp.json().get("data")
        except ValueError:
            data = None
        if not isinstance(data, dict):
            raise AuthError(503, "vault unavailable")
        return data
