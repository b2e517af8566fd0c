"""Payload dataclasses shared by workflows, activities and clients.

Every workflow, signal, query and activity takes one of these and returns one; new fields get defaults so old
histories still decode. They carry references (ids, paths, names), never secret values.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from workflows.spec import AgentSpec


class AgentState(StrEnum):
    PENDING_APPROVAL = "pending_approval"
    PROVISIONING = "provisioning"
    RUNNING = "running"
    DESTROYING = "destroying"
    DESTROYED = "destroyed"
    REJECTED = "rejected"
    FAILED = "failed"

    @property
    def terminal(self) -> bool:
        return self in (AgentState.DESTROYED, AgentState.REJECTED, AgentState.FAILED)


# --- signals -------------------------------------------------------------------------------------------------------


@dataclass
class Decision:
    """Body of the `approve` and `reject` signals, e.g. {"approver": "alice", "reason": "ticket OPS-12"}."""

    approver: str = ""
    reason: str = ""


@dataclass
class DestroyRequest:
    """Body of the `destroy` signal, e.g. {"requested_by": "alice", "reason": "done"}; may be empty."""

    requested_by: str = ""
    reason: str = ""


# --- workflow input, query and result ------------------------------------------------------------------------------


@dataclass
class VMRef:
    provider: str
    vm_id: str
    name: str
    address: str = ""
    location: str = ""
    # Provider API requests the activity that returned this made (for the lifecycle's budget accounting).
    api_calls: int = 0


@dataclass
class VMDeleted:
    deleted: bool
    api_calls: int = 0


@dataclass
class LifecycleInput:
    spec: AgentSpec
    # Set only by continue-as-new: the agent is already running on this VM.
    running_vm: VMRef | None = None
    started_at: datetime | None = None
    running_at: datetime | None = None
    approved_by: str = ""
    api_calls: int = 0


@dataclass
class AgentStatus:
    agent_id: str
    account_id: str
    state: AgentState
    provider: str
    region: str
    vm_id: str = ""
    address: str = ""
    location: str = ""
    health: str = "unknown"
    approved_by: str = ""
    last_error: str = ""
    waiting_for: str = ""
    created_at: datetime | None = None
    updated_at: datetime | None = None
    running_at: datetime | None = None
    finished_at: datetime | None = None
    api_calls: int = 0


@dataclass
class LifecycleResult:
    agent_id: str
    state: AgentState
    reason: str = ""
    api_calls: int = 0


# --- activity inputs and outputs -----------------------------------------------------------------------------------


@dataclass
class AgentRef:
    agent_id: str
    account_id: str


@dataclass
class SecretRefs:
    """Where an agent's secrets live; names only."""

    kv_path: str
    policy: str
    role: str
    transit_key: str


@dataclass
class CreateVMRequest:
    agent_id: str
    account_id: str
    name: str
    provider: str
    region: str
    size: str
    # The provider's location code chosen by the workflow; empty means the region's first location.
    location: str = ""


@dataclass
class VMLookup:
    provider: str
    agent_id: str
    vm_id: str = ""


@dataclass
class HealthCheckRequest:
    agent_id: str
    address: str
    deadline: datetime


@dataclass
class HealthReport:
    agent_id: str
    healthy: bool
    status: str
    secrets_loaded: int = 0
    reason: str = ""
    checks: int = 0


@dataclass
class Residue:
    """What is left of an agent in one system; all zero means gone."""

    vms: int = 0
    secrets: int = 0
    policies: int = 0
    roles: int = 0
    keys: int = 0
    tokens: int = 0

    @property
    def total(self) -> int:
        return self.vms + self.secrets + self.policies + self.roles + self.keys + self.tokens


@dataclass
class Transition:
    """One change of an agent, written to the registry row and appended to the audit trail in one transaction.

    `event_key` is unique per workflow step, so a retried activity never writes the event twice.
    """

    event_key: str
    agent_id: str
    account_id: str
    state: AgentState
    action: str
    actor: str = "lobstack"
    reason: str = ""
    name: str = ""
    provider: str = ""
    region: str = ""
    size: str = ""
    vm_id: str = ""
    address: str = ""
    health: str = ""
    at: datetime | None = None
    details: dict[str, str] = field(default_factory=dict)
