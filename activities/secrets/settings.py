"""How the orchestrator reaches Vault / OpenBao: address, token, mount points, TTLs and timeouts."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

import hvac

from contracts.identifiers import DEFAULT_KV_MOUNT

MAX_WRAP_TTL_S = 600
# An agent's TLS certificate lives at most a day (its bridge renews it well before): destroy does not revoke it (see
# AgentVault.destroy), so this bounds how long a certificate of a destroyed agent stays valid.
MAX_CERT_TTL_S = 24 * 3600
MIN_CERT_TTL_S = 60

# Mounts end up inside policy text and URLs: refuse anything that could widen a policy path or inject HCL.
_MOUNT = re.compile(r"^[a-z0-9](?:[a-z0-9_-]{0,62}[a-z0-9])?$")


@dataclass(frozen=True, kw_only=True)
class VaultSettings:
    addr: str
    token: str = field(repr=False)
    kv_mount: str = DEFAULT_KV_MOUNT
    transit_mount: str = "transit"
    approle_mount: str = "approle"
    # Vault's PKI engine holding the agents' CA: a role per agent that issues only that agent's name.
    pki_mount: str = "pki-agents"
    cert_ttl_s: int = MAX_CERT_TTL_S
    # The bootstrap credential dies after this many seconds whether or not it was used.
    wrap_ttl_s: int = MAX_WRAP_TTL_S
    request_timeout_s: float = 10.0
    # The Vault address as an agent's VM reaches it, when that differs from ours (NAT, private network).
    agent_addr: str = ""

    def __post_init__(self) -> None:
        if not self.addr:
            raise ValueError("vault addr is required (VAULT_ADDR)")
        for name in ("kv_mount", "transit_mount", "approle_mount", "pki_mount"):
            if not _MOUNT.fullmatch(getattr(self, name)):
                raise ValueError(f"{name}: {getattr(self, name)!r} is not allowed; use 1-64 of a-z, 0-9, '_', '-'")
        if not 1 <= self.wrap_ttl_s <= MAX_WRAP_TTL_S:
            raise ValueError(f"wrap_ttl_s: {self.wrap_ttl_s} is not allowed; must be 1 to {MAX_WRAP_TTL_S} seconds")
        if not MIN_CERT_TTL_S <= self.cert_ttl_s <= MAX_CERT_TTL_S:
            raise ValueError(
                f"cert_ttl_s: {self.cert_ttl_s} is not allowed; must be {MIN_CERT_TTL_S} to {MAX_CERT_TTL_S} seconds"
            )
        if self.request_timeout_s <= 0:
            raise ValueError(f"request_timeout_s: {self.request_timeout_s} is not allowed; must be > 0")

    def client(self) -> hvac.Client:
        """A new hvac client for these settings: one per long-lived holder (it keeps a connection pool)."""
        return hvac.Client(
            url=self.addr,
            token=self.token,
            timeout=self.request_timeout_s,  # type: ignore[arg-type]  # types-hvac says int; requests takes a float
        )

    @property
    def bootstrap_addr(self) -> str:
        return self.agent_addr or self.addr

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> VaultSettings:
        """VAULT_ADDR and VAULT_TOKEN, plus optional overrides LOBSTACK_VAULT_{KV,TRANSIT,APPROLE,PKI}_MOUNT,
        LOBSTACK_VAULT_WRAP_TTL_S, LOBSTACK_VAULT_CERT_TTL_S, LOBSTACK_VAULT_TIMEOUT_S and LOBSTACK_VAULT_AGENT_ADDR."""
        env = os.environ if environ is None else environ
        defaults = cls(addr="http://unused", token="")

        def get(name: str, default: str) -> str:
            return env.get(f"LOBSTACK_VAULT_{name}", "") or default

        return cls(
            addr=env.get("VAULT_ADDR", ""),
            token=env.get("VAULT_TOKEN", ""),
            kv_mount=get("KV_MOUNT", defaults.kv_mount),
            transit_mount=get("TRANSIT_MOUNT", defaults.transit_mount),
            approle_mount=get("APPROLE_MOUNT", defaults.approle_mount),
            pki_mount=get("PKI_MOUNT", defaults.pki_mount),
            cert_ttl_s=int(get("CERT_TTL_S", str(defaults.cert_ttl_s))),
            wrap_ttl_s=int(get("WRAP_TTL_S", str(defaults.wrap_ttl_s))),
            request_timeout_s=float(get("TIMEOUT_S", str(defaults.request_timeout_s))),
            agent_addr=get("AGENT_ADDR", ""),
        )


def from_env(environ: Mapping[str, str] | None = None) -> VaultSettings:
    return VaultSettings.from_env(environ)
