"""What the registry hands out: frozen copies of rows, never objects bound to a session."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from contracts.models import AgentState

__all__ = ["AgentDataRecord", "AgentRecord", "AuditRecord", "HealthRecord"]


@dataclass(frozen=True)
class AgentRecord:
    agent_id: str
    account_id: str
    name: str
    provider: str
    region: str
    size: str
    state: AgentState
    vm_id: str
    address: str
    health: str
    created_at: datetime
    updated_at: datetime
    last_error: str = ""
    unhealthy_threshold: int = 3
    # Its VM's monthly list price as admitted, in cents (spend quotas, store.account_limits).
    monthly_usd_cents: int = 0
    monthly_eur_cents: int = 0


@dataclass(frozen=True)
class AuditRecord:
    id: int
    event_key: str
    at: datetime
    account_id: str
    agent_id: str
    action: str
    state: AgentState
    actor: str
    reason: str
    details: dict[str, str] = field(default_factory=dict)
    seq: int = 0
    prev_hash: str = ""
    hash: str = ""


@dataclass(frozen=True)
class AgentDataRecord:
    """One stored item of an agent's data: ciphertext only, never the plaintext."""

    agent_id: str
    account_id: str
    name: str
    ciphertext: str = field(repr=False)
    key_version: int
    updated_at: datetime


@dataclass(frozen=True)
class HealthRecord:
    """The fleet monitor's last word on an agent (see FleetHealth)."""

    agent_id: str
    healthy: bool
    status: str
    consecutive_failures: int
    address: str
    checked_at: datetime
    reason: str = ""
