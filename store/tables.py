"""The registry's tables: `agents` holds the current state of each agent, `audit_events` every change, append-only."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, Table, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from store.types import JSON_LIST, JSON_OBJECT, UTCDateTime

__all__ = [
    "ACCOUNT_LIMITS",
    "AGENTS",
    "AGENT_DATA",
    "AGENT_HEALTH",
    "APPROVAL_POLICIES",
    "AUDIT_EVENTS",
    "LAST_ERROR_MAX",
    "REASON_MAX",
    "WEBHOOK_ENDPOINTS",
    "AccountLimitsRow",
    "AgentDataRow",
    "AgentHealthRow",
    "AgentRow",
    "ApprovalPolicyRow",
    "AuditEvent",
    "WebhookEndpointRow",
]

# Free text is cut to these lengths rather than refused: an audit write must not fail because an error was wordy.
LAST_ERROR_MAX = 500
REASON_MAX = 1000


class AgentRow(SQLModel, table=True):
    __tablename__ = "agents"

    agent_id: str = Field(primary_key=True, max_length=40)
    account_id: str = Field(index=True, max_length=40)
    name: str = Field(default="", max_length=63)
    provider: str = Field(default="", max_length=32)
    region: str = Field(default="", max_length=32)
    size: str = Field(default="", max_length=32)
    state: str = Field(index=True, max_length=32)
    vm_id: str = Field(default="", max_length=128)
    address: str = Field(default="", max_length=255)
    health: str = Field(default="unknown", max_length=32)
    created_at: datetime = Field(sa_type=UTCDateTime)
    updated_at: datetime = Field(sa_type=UTCDateTime)
    last_error: str = Field(default="", max_length=LAST_ERROR_MAX)
    # The spec's unhealthy_threshold: the fleet monitor tells the lifecycle exactly when its failures reach it.
    unhealthy_threshold: int = Field(default=3)
    # Its VM's monthly list price in cents, as admitted (store.account_limits): what spend quotas add up.
    monthly_usd_cents: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    monthly_eur_cents: int = Field(default=0, sa_column_kwargs={"server_default": "0"})


class AuditEvent(SQLModel, table=True):
    """Append-only: PostgreSQL and SQLite triggers refuse UPDATE and DELETE (store/migrations, the baseline)."""

    __tablename__ = "audit_events"
    # An index rather than a constraint so the adoption of pre-migration databases adds it by the same name on both
    # databases (store.migrations.legacy).
    __table_args__ = (Index("uq_audit_events_account_seq", "account_id", "seq", unique=True),)

    id: int | None = Field(default=None, primary_key=True)
    # The idempotency key of the workflow step: a retried activity hits the unique constraint and writes nothing.
    event_key: str = Field(unique=True, max_length=200)
    at: datetime = Field(sa_type=UTCDateTime)
    account_id: str = Field(index=True, max_length=40)
    agent_id: str = Field(index=True, max_length=40)
    action: str = Field(max_length=64)
    state: str = Field(max_length=32)
    actor: str = Field(default="", max_length=128)
    reason: str = Field(default="", max_length=REASON_MAX)
    # Short strings only (see store.validation); never secret values.
    details: dict[str, str] = Field(default_factory=dict, sa_type=JSON_OBJECT)
    # The account's hash chain (store.audit): position, the previous event's hash, this event's hash.
    seq: int = 0
    prev_hash: str = Field(default="", max_length=64)
    hash: str = Field(default="", max_length=64)


# --- maintenance: encrypted agent data and fleet health (KeyRotation, FleetHealth) ----------------------------------


class AgentDataRow(SQLModel, table=True):
    """Customer-provided credentials and configuration of an agent, as Vault Transit ciphertext only.

    `key_version` is the Transit key version the ciphertext was made with, so KeyRotation finds what to rewrap by
    index instead of parsing every ciphertext.
    """

    __tablename__ = "agent_data"
    __table_args__ = (UniqueConstraint("agent_id", "name", name="uq_agent_data_agent_name"),)

    id: int | None = Field(default=None, primary_key=True)
    agent_id: str = Field(index=True, max_length=40)
    account_id: str = Field(index=True, max_length=40)
    name: str = Field(max_length=63)
    ciphertext: str = Field(sa_type=Text)
    key_version: int = Field(index=True)
    updated_at: datetime = Field(sa_type=UTCDateTime)


class AgentHealthRow(SQLModel, table=True):
    """What the fleet monitor last told a lifecycle about its agent, so only a change signals it again.

    A table of its own rather than columns on `agents`: it was added when the schema could only gain tables.
    """

    __tablename__ = "agent_health"

    agent_id: str = Field(primary_key=True, max_length=40)
    # Copied from `agents` when saved: row-level security needs the owner on every account-owned row.
    account_id: str = Field(default="", index=True, max_length=40)
    healthy: bool
    status: str = Field(default="", max_length=32)
    reason: str = Field(default="", max_length=300)
    consecutive_failures: int = 0
    # The address probed: a replaced VM starts over from "healthy" instead of inheriting the old VM's failures.
    address: str = Field(default="", max_length=255)
    checked_at: datetime = Field(sa_type=UTCDateTime)


# --- approval notices (contracts/webhooks.py) ------------------------------------------------------------------------


class WebhookEndpointRow(SQLModel, table=True):
    """Where an account's approval notices go. The generic format's signing secret is in Vault, never here
    (activities/webhooks.py names its path from `account_id` and `endpoint_id`)."""

    __tablename__ = "webhook_endpoints"

    endpoint_id: str = Field(primary_key=True, max_length=32)
    account_id: str = Field(index=True, max_length=40)
    url: str = Field(max_length=2000)
    format: str = Field(max_length=16)
    created_at: datetime = Field(sa_type=UTCDateTime)


class ApprovalPolicyRow(SQLModel, table=True):
    """An account's approvers and approval policy (contracts.approver_policy), one row per account.

    Lists as JSON: read whole at every decision and never searched by their items.
    """

    __tablename__ = "approval_policies"

    account_id: str = Field(primary_key=True, max_length=40)
    approvers: list[str] = Field(default_factory=list, sa_type=JSON_LIST)
    four_eyes: bool = False
    two_approvals_skills: list[str] = Field(default_factory=list, sa_type=JSON_LIST)
    two_approvals_sizes: list[str] = Field(default_factory=list, sa_type=JSON_LIST)
    require_identity_match: bool = False
    updated_at: datetime = Field(sa_type=UTCDateTime)


class AccountLimitsRow(SQLModel, table=True):
    """An account's quotas and agent lifetimes (contracts.limits), one row per account; 0 means none."""

    __tablename__ = "account_limits"

    account_id: str = Field(primary_key=True, max_length=40)
    max_agents: int = 0
    max_vcpus: int = 0
    max_monthly_usd: int = 0
    max_monthly_eur: int = 0
    default_max_lifetime_s: int = 0
    default_idle_timeout_s: int = 0
    max_lifetime_s: int = 0
    updated_at: datetime = Field(sa_type=UTCDateTime)


# The Core tables, for the statements the registry builds itself. sqlmodel sets `__table__` on each class but does not
# declare it, so they are taken from the metadata, typed.
AGENTS: Table = SQLModel.metadata.tables[AgentRow.__tablename__]
AUDIT_EVENTS: Table = SQLModel.metadata.tables[AuditEvent.__tablename__]
AGENT_DATA: Table = SQLModel.metadata.tables[AgentDataRow.__tablename__]
AGENT_HEALTH: Table = SQLModel.metadata.tables[AgentHealthRow.__tablename__]
WEBHOOK_ENDPOINTS: Table = SQLModel.metadata.tables[WebhookEndpointRow.__tablename__]
APPROVAL_POLICIES: Table = SQLModel.metadata.tables[ApprovalPolicyRow.__tablename__]
ACCOUNT_LIMITS: Table = SQLModel.metadata.tables[AccountLimitsRow.__tablename__]
