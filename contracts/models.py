"""Payload dataclasses shared by workflows, activities and clients.

Every workflow, signal, query and activity takes one of these and returns one; new fields get defaults so old
histories still decode. They carry references (ids, paths, names), never secret values.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Literal, TypeGuard, get_args

from contracts.regions import ProviderName
from contracts.spec import AgentSpec

# An agent's health: what its bridge says on /health (starting, healthy, unhealthy), or what the orchestrator concludes
# when there is no usable answer ("gone": the agent was destroyed). A bridge's answer is narrowed to these before it
# enters a payload (activities.health).
HealthStatus = Literal[
    "unknown",
    "unchecked",
    "starting",
    "healthy",
    "unhealthy",
    "compromised",
    "unreachable",
    "invalid",
    "wrong-agent",
    "gone",
]
HEALTH_STATUSES: tuple[HealthStatus, ...] = get_args(HealthStatus)


def is_health_status(value: object) -> TypeGuard[HealthStatus]:
    return value in HEALTH_STATUSES


class AgentState(StrEnum):
    PENDING_APPROVAL = "pending_approval"
    PROVISIONING = "provisioning"
    RUNNING = "running"
    # Running, but failed enough health checks in a row; replaced automatically where the spec asks for it.
    DEGRADED = "degraded"
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
class ApprovalDecision:
    """Body of a tool approval's `decide` update (the CLI's path): a decision that reports back."""

    approver: str = ""
    reason: str = ""
    approved: bool = False


@dataclass
class DestroyRequest:
    """Body of the `destroy` signal, e.g. {"requested_by": "alice", "reason": "done"}; may be empty."""

    requested_by: str = ""
    reason: str = ""


# --- workflow input, query and result ------------------------------------------------------------------------------


@dataclass
class VMRef:
    provider: ProviderName
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
    # The provider's ids of the VMs this call deleted (by id or found by the agent's label).
    vm_ids: list[str] = field(default_factory=list)


@dataclass
class LifecycleState:
    """Everything an AgentLifecycle knows about its agent, held as this one value.

    The workflow changes it in place, carries it whole through continue-as-new (`LifecycleInput.state`), and answers
    the `status` and `policy` queries from it, so the next run starts exactly where the last one stopped: a degraded
    agent stays degraded, with its failure count and last error. A field added here is carried without more code.
    """

    state: AgentState = AgentState.PROVISIONING
    vm: VMRef | None = None
    health: HealthStatus = "unknown"
    # Failed health checks in a row, as the fleet monitor counts them; 0 once healthy or on a new VM.
    consecutive_failures: int = 0
    last_error: str = ""
    approved_by: str = ""
    # What the workflow waits for, as the Web UI shows it, ending with `refused_note` while there is one.
    waiting_for: str = ""
    refused_note: str = ""
    # `sent_at` of the last sealed system message accepted: an older one is a replay (contracts/internal_messages.py).
    last_system_message_at: str = ""
    created_at: datetime | None = None
    updated_at: datetime | None = None
    running_at: datetime | None = None
    finished_at: datetime | None = None
    api_calls: int = 0
    skills: list[str] = field(default_factory=list)
    approval_required: list[str] = field(default_factory=list)
    policy_version: int = 0
    # Asked for by a health change and done by the serving loop: a continue-as-new that comes first keeps it asked.
    replace_requested: bool = False
    # The accepted `destroy`, kept through continue-as-new so that one arriving just before it still counts.
    destroy: DestroyRequest | None = None
    # Providers a create was sent to, in order, and those of them that may hold a VM of the agent until proven empty.
    tried: list[ProviderName] = field(default_factory=list)
    may_have_vm: list[ProviderName] = field(default_factory=list)
    # The lifetimes admission settled (contracts.limits), 0 meaning none; the lifetime counts from `serving_since`,
    # the first time the agent ran (a replacement VM does not reset it). The warnings shown before each deadline.
    max_lifetime_s: int = 0
    idle_timeout_s: int = 0
    serving_since: datetime | None = None
    lifetime_warning: str = ""
    idle_warning: str = ""

    @property
    def expires_at(self) -> datetime | None:
        """When the maximum lifetime destroys the agent (None: no maximum, or not yet running)."""
        if not self.max_lifetime_s or self.serving_since is None:
            return None
        return self.serving_since + timedelta(seconds=self.max_lifetime_s)

    # Providers an agent firewall was asked for: each may hold one until cleanup deletes it and verifies it gone.
    firewalls_on: list[ProviderName] = field(default_factory=list)
    # Provider API calls made for the agent's firewalls, counted apart from its VM's `api_calls`.
    firewall_calls: int = 0
    # The warm pool slot whose VM the agent was given (contracts/pool.py): cleanup also destroys that pool identity.
    # `started_from` says how its VM came: "warm pool <pool>" or "cold create" (and why the pool could not serve).
    pool_slot: str = ""
    started_from: str = ""

    def create_sent(self, provider: ProviderName) -> None:
        """A create goes to `provider`: until it says otherwise, a VM may be there (a lost response still makes one)."""
        if provider not in self.tried:
            self.tried.append(provider)
        if provider not in self.may_have_vm:
            self.may_have_vm.append(provider)

    def proven_empty(self, provider: ProviderName) -> None:
        if provider in self.may_have_vm:
            self.may_have_vm.remove(provider)

    def status(self, spec: AgentSpec) -> AgentStatus:
        vm = self.vm
        return AgentStatus(
            agent_id=spec.agent_id,
            account_id=spec.account_id,
            state=self.state,
            provider=vm.provider if vm else spec.provider,
            region=spec.region,
            vm_id=vm.vm_id if vm else "",
            address=vm.address if vm else "",
            location=vm.location if vm else "",
            health=self.health,
            approved_by=self.approved_by,
            last_error=self.last_error,
            waiting_for=self.waiting_for,
            created_at=self.created_at,
            updated_at=self.updated_at,
            running_at=self.running_at,
            finished_at=self.finished_at,
            api_calls=self.api_calls,
            firewall_calls=self.firewall_calls,
            consecutive_failures=self.consecutive_failures,
            expires_at=self.expires_at,
            idle_timeout_s=self.idle_timeout_s,
            started_from=self.started_from,
        )

    def policy(self, spec: AgentSpec) -> AgentPolicy:
        return AgentPolicy(
            agent_id=spec.agent_id,
            account_id=spec.account_id,
            state=self.state,
            skills=list(self.skills),
            approval_required=list(self.approval_required),
            approvers=list(spec.approvers),
            escalation_approvers=list(spec.escalation_approvers),
            version=self.policy_version,
            placement=f"{self.vm.provider if self.vm else spec.provider}/{spec.region}/{spec.size}",
        )


@dataclass
class LifecycleInput:
    spec: AgentSpec
    # Set only by continue-as-new: the whole state of the run before (the agent is already running).
    state: LifecycleState | None = None
    # After a create whose outcome is unknown (its answer lost, then the provider down), how long to wait for that
    # provider to answer before the lifecycle fails instead of creating a second VM elsewhere.
    abandoned_create_wait_s: int = 600
    # What versions before `state` carried through continue-as-new, read only when `state` is absent: runs they
    # started continue on this code. Never written any more.
    running_vm: VMRef | None = None
    started_at: datetime | None = None
    running_at: datetime | None = None
    approved_by: str = ""
    api_calls: int = 0
    skills: list[str] | None = None
    approval_required: list[str] | None = None
    policy_version: int = 0
    # Who asked for the agent (the client's identity or the name it was given): with the account's four-eyes policy,
    # that person cannot approve it. Empty in runs started before it existed.
    requested_by: str = ""

    @property
    def continued(self) -> bool:
        """Started by continue-as-new: the agent is already running."""
        return self.state is not None or self.running_vm is not None

    def first_state(self) -> LifecycleState:
        """The state this run starts from: the one carried over, else one made from the spec (and from the fields
        an older version carried)."""
        if self.state is not None:
            return self.state
        spec, vm = self.spec, self.running_vm
        if vm is not None:
            state = AgentState.RUNNING
        elif spec.require_approval:
            state = AgentState.PENDING_APPROVAL
        else:
            state = AgentState.PROVISIONING
        return LifecycleState(
            state=state,
            vm=vm,
            health="healthy" if vm else "unknown",
            approved_by=self.approved_by,
            created_at=self.started_at,
            running_at=self.running_at,
            api_calls=self.api_calls,
            skills=list(self.skills if self.skills is not None else spec.skills),
            approval_required=list(
                self.approval_required if self.approval_required is not None else spec.approval_required
            ),
            policy_version=self.policy_version,
            tried=[vm.provider] if vm else [],
            may_have_vm=[vm.provider] if vm else [],
        )


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
    health: HealthStatus = "unknown"
    approved_by: str = ""
    last_error: str = ""
    waiting_for: str = ""
    created_at: datetime | None = None
    updated_at: datetime | None = None
    running_at: datetime | None = None
    finished_at: datetime | None = None
    api_calls: int = 0
    firewall_calls: int = 0
    # Failed health checks in a row (the agent degrades at the spec's `unhealthy_threshold`).
    consecutive_failures: int = 0
    # When its maximum lifetime destroys it, and after how long without agent API requests it is destroyed (0: never).
    expires_at: datetime | None = None
    idle_timeout_s: int = 0
    # How its VM came: "warm pool <pool id>", or "cold create (<why the pool could not serve>)"; empty before.
    started_from: str = ""


@dataclass
class LifecycleResult:
    agent_id: str
    state: AgentState
    reason: str = ""
    # Provider API calls for the agent's VM, and apart from them for its firewall.
    api_calls: int = 0
    firewall_calls: int = 0


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
    provider: ProviderName
    region: str
    size: str
    # The provider's location code chosen by the workflow; empty means the region's first location.
    location: str = ""
    # The agent's firewall on this provider (FirewallActivities.ensure_firewall), attached at create; empty: none.
    firewall_id: str = ""


@dataclass
class FirewallRequest:
    """The agent's firewall on one provider: ensured before its VM is created there, deleted after it is gone."""

    provider: ProviderName
    agent_id: str
    account_id: str = ""


@dataclass
class FirewallRef:
    provider: ProviderName
    firewall_id: str
    api_calls: int = 0


@dataclass
class FirewallsDeleted:
    firewall_ids: list[str] = field(default_factory=list)
    api_calls: int = 0


@dataclass
class VMLookup:
    provider: ProviderName
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
    status: HealthStatus
    secrets_loaded: int = 0
    reason: str = ""
    checks: int = 0
    # Seconds since the agent last called its bridge's agent API; -1 when the bridge does not say (an old bridge).
    idle_s: float = -1.0


@dataclass
class Residue:
    """What is left of an agent in one system; all zero means gone."""

    vms: int = 0
    secrets: int = 0
    policies: int = 0
    roles: int = 0
    keys: int = 0
    tokens: int = 0
    firewalls: int = 0
    # What proving it cost against a cloud provider's API budget (the lifecycle's api_calls); not a residue.
    api_calls: int = 0

    @property
    def total(self) -> int:
        return self.vms + self.secrets + self.policies + self.roles + self.keys + self.tokens + self.firewalls


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
    # Append the event only, leaving the agent's row alone (approval decisions, sweeps, rotations).
    audit_only: bool = False
    # The spec's unhealthy_threshold, kept on the agent's row for the fleet monitor; 0 leaves the row's value.
    unhealthy_threshold: int = 0


# --- skills, health and tool approvals (issue 4) ---------------------------------------------------------------


@dataclass
class SkillUpdate:
    """Body of the lifecycle's `update_skills` signal, e.g. {"skills": ["web.search"], "requested_by": "alice"}.

    `approval_required` holds fnmatch patterns of tools that need a human first; None keeps the current ones.
    """

    skills: list[str] = field(default_factory=list)
    approval_required: list[str] | None = None
    requested_by: str = ""


@dataclass
class SkillConfig:
    """What the bridge enforces: the enabled tools, and which of them need an approval."""

    agent_id: str
    skills: list[str]
    approval_required: list[str]
    version: int = 0


@dataclass
class AgentPolicy:
    """The lifecycle's `policy` query: what the gateway needs to decide for an agent."""

    agent_id: str
    account_id: str
    state: AgentState
    skills: list[str]
    approval_required: list[str]
    approvers: list[str]
    escalation_approvers: list[str]
    version: int = 0
    # Where the agent runs (`provider/region/size`, the VM's provider once it has one): named in approval summaries.
    placement: str = ""


@dataclass
class HealthChange:
    """Sent by the fleet monitor to a lifecycle only when an agent's health changes (never once per probe)."""

    healthy: bool
    status: HealthStatus
    reason: str = ""
    consecutive_failures: int = 0
    checked_at: datetime | None = None
    # Set by the system only: when it was sent and its seal (contracts/internal_messages.py); a body without them
    # is refused.
    sent_at: str = ""
    seal: str = ""


class ApprovalState(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    EXPIRED = "expired"
    # Closed without a decision because its agent is gone (destroyed, failed, or swept): nothing may run any more.
    CANCELLED = "cancelled"


@dataclass
class ToolApprovalInput:
    """A bridge asks before running a gated tool. `arguments` are already redacted by the gateway."""

    agent_id: str
    account_id: str
    request_id: str
    tool: str
    arguments: dict[str, str] = field(default_factory=dict)
    risk: str = "high"
    requested_by: str = ""
    approvers: list[str] = field(default_factory=list)
    timeout_s: int = 3600
    # After `timeout_s` with no decision, the escalation group may decide for another `escalation_timeout_s`.
    escalation_approvers: list[str] = field(default_factory=list)
    escalation_timeout_s: int = 0
    # Publish the `LobstackApprovalState` search attribute (the server must have it registered).
    publish_search_attribute: bool = True


@dataclass
class CloseApprovals:
    """Close every open tool approval of an agent (its lifecycle ended, or the sweep found it orphaned)."""

    agent_id: str
    account_id: str
    reason: str


@dataclass
class ApprovalsClosed:
    agent_id: str
    closed: int = 0


@dataclass
class ApprovalStatus:
    approval_id: str
    agent_id: str
    tool: str
    state: ApprovalState
    approvers: list[str] = field(default_factory=list)
    escalated: bool = False
    decided_by: str = ""
    reason: str = ""
    requested_at: datetime | None = None
    decided_at: datetime | None = None
    refused: int = 0
