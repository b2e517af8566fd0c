"""How the gateway reaches Temporal and Vault, and the limits it applies to agents' requests."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from temporalio.client import Client

from contracts.queues import WORKFLOW_QUEUE

DEFAULT_PORT = 8788
MAX_WAIT_S = 30.0


@dataclass(frozen=True, kw_only=True)
class GatewaySettings:
    # Injected, so the gateway shares the deployment's connection (and its data converter) and tests use theirs.
    temporal: Client
    vault_addr: str
    task_queue: str = WORKFLOW_QUEUE
    approle_mount: str = "approle"
    # How long an approval waits for the agent's approvers, then (if it has any) for its escalation approvers.
    # Approvers of agents whose spec names none (the spec's list wins when it has one).
    default_approvers: tuple[str, ...] = ()
    approval_timeout_s: int = 3600
    escalation_timeout_s: int = 3600
    # A token seen valid is trusted this long without asking Vault again: a revoked token keeps working at most this
    # long. Short on purpose; it only spares Vault the lookups of a bridge's bursts (skills poll plus a long poll).
    auth_cache_s: float = 5.0
    vault_timeout_s: float = 5.0
    # Upper bound of a long poll (GET /v1/approvals/{id}?wait=N); stays under common proxy idle timeouts.
    max_wait_s: float = MAX_WAIT_S
    # How often a long poll re-reads the approval's state while its workflow is still open.
    poll_interval_s: float = 0.5
    listen_host: str = "127.0.0.1"
    listen_port: int = DEFAULT_PORT
    # Bearer tokens cross the network: serve TLS unless a TLS-terminating proxy sits in front.
    tls_certfile: str = ""
    tls_keyfile: str = ""

    def __post_init__(self) -> None:
        if not self.vault_addr:
            raise ValueError("vault_addr is required (VAULT_ADDR)")
        if not 60 <= self.approval_timeout_s <= 30 * 24 * 3600:
            raise ValueError(f"approval_timeout_s: {self.approval_timeout_s} is not allowed; must be 60 to 2592000")
        if not 0 <= self.escalation_timeout_s <= 30 * 24 * 3600:
            raise ValueError(f"escalation_timeout_s: {self.escalation_timeout_s} is not allowed; must be 0 to 2592000")
        if not 0 <= self.auth_cache_s <= 60:
            raise ValueError(f"auth_cache_s: {self.auth_cache_s} is not allowed; must be 0 to 60 seconds")
        if not 0 < self.max_wait_s <= MAX_WAIT_S:
            raise ValueError(f"max_wait_s: {self.max_wait_s} is not allowed; must be above 0 and at most {MAX_WAIT_S}")
        if bool(self.tls_certfile) != bool(self.tls_keyfile):
            raise ValueError("tls_certfile and tls_keyfile go together")

    @classmethod
    def from_env(cls, temporal: Client, environ: Mapping[str, str] | None = None) -> GatewaySettings:
        """VAULT_ADDR (required), LOBSTACK_TASK_QUEUE, LOBSTACK_VAULT_APPROLE_MOUNT, LOBSTACK_DEFAULT_APPROVERS
        (comma-separated), LOBSTACK_APPROVAL_TIMEOUT_S, LOBSTACK_ESCALATION_TIMEOUT_S and
        LOBSTACK_GATEWAY_{HOST,PORT,AUTH_CACHE_S,TLS_CERTFILE,TLS_KEYFILE}."""
        env = os.environ if environ is None else environ
        approvers = tuple(a.strip() for a in env.get("LOBSTACK_DEFAULT_APPROVERS", "").split(",") if a.strip())
        return cls(
            temporal=temporal,
            vault_addr=env.get("VAULT_ADDR", ""),
            task_queue=env.get("LOBSTACK_TASK_QUEUE", "") or WORKFLOW_QUEUE,
            approle_mount=env.get("LOBSTACK_VAULT_APPROLE_MOUNT", "") or "approle",
            default_approvers=approvers,
            approval_timeout_s=int(env.get("LOBSTACK_APPROVAL_TIMEOUT_S", "") or 3600),
            escalation_timeout_s=int(env.get("LOBSTACK_ESCALATION_TIMEOUT_S", "") or 3600),
            auth_cache_s=float(env.get("LOBSTACK_GATEWAY_AUTH_CACHE_S", "") or 5.0),
            listen_host=env.get("LOBSTACK_GATEWAY_HOST", "") or "127.0.0.1",
            listen_port=int(env.get("LOBSTACK_GATEWAY_PORT", "") or DEFAULT_PORT),
            tls_certfile=env.get("LOBSTACK_GATEWAY_TLS_CERTFILE", ""),
            tls_keyfile=env.get("LOBSTACK_GATEWAY_TLS_KEYFILE", ""),
        )
