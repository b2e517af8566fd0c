"""Payloads of the maintenance workflows (KeyRotation, OrphanSweep, FleetHealth) and their activities.

Ids, names and counts only: never plaintext, ciphertext or tokens. New fields get defaults so old histories decode.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

# Schedule ids (workers/schedules.py) and the workflow type names they start.
KEY_ROTATION_SCHEDULE = "lobstack-key-rotation"
ORPHAN_SWEEP_SCHEDULE = "lobstack-orphan-sweep"
FLEET_HEALTH_SCHEDULE = "lobstack-fleet-health"

# Who the audit trail names for the sweep's and the rotation's actions.
SWEEP_ACTOR = "orphan-sweep"
ROTATION_ACTOR = "key-rotation"

# How many entries of id lists a result carries; counts stay exact.
REPORT_IDS_MAX = 100


# --- KeyRotation ---------------------------------------------------------------------------------------------------


@dataclass
class RotationInput:
    # Agents per activity: each rotates, rewraps and raises one agent after another, heartbeating in between.
    batch_size: int = 25
    # Batches in flight at once (bounds the load on Vault and the database).
    parallel_batches: int = 4

    def invalid(self) -> str:
        """What is wrong with this input, or "" (a schedule or `lobstack keys rotate` may be given anything)."""
        return _out_of_range(batch_size=(self.batch_size, 1, 1000), parallel_batches=(self.parallel_batches, 1, 64))


@dataclass
class RotationTargets:
    agent_ids: list[str] = field(default_factory=list)


@dataclass
class RotationBatch:
    run_id: str
    # When this run began: a key version created since then was made by this run (a retry does not rotate again).
    started_at: datetime
    agent_ids: list[str] = field(default_factory=list)


@dataclass
class AgentRotation:
    agent_id: str
    # False when the key vanished meanwhile (agent destroyed); nothing else was done then.
    rotated: bool
    from_version: int = 0
    to_version: int = 0
    rewrapped: int = 0
    # Items Vault refused to rewrap; while any is left, min_decryption_version is not raised (no data is lost).
    unreadable: int = 0
    min_raised: bool = False
    # Set when Vault refused this agent's rotation (ids, paths and error classes only).
    error: str = ""


@dataclass
class RotationBatchResult:
    agents: list[AgentRotation] = field(default_factory=list)


@dataclass
class RotationResult:
    agents: int = 0
    keys_rotated: int = 0
    rewrapped: int = 0
    unreadable: int = 0
    min_raised: int = 0
    # Agents whose min_decryption_version stayed put because an item could not be rewrapped (first REPORT_IDS_MAX).
    held_back: list[str] = field(default_factory=list)
    # Agents Vault refused to rotate (first REPORT_IDS_MAX); the next run tries them again.
    failed: list[str] = field(default_factory=list)


# --- OrphanSweep ---------------------------------------------------------------------------------------------------


@dataclass
class SweepInput:
    dry_run: bool = False
    # Orphans handled per run at most; the rest wait for the next run (bounds payloads and one run's blast radius).
    max_agents: int = 1000
    batch_size: int = 20

    def invalid(self) -> str:
        return _out_of_range(max_agents=(self.max_agents, 1, 100_000), batch_size=(self.batch_size, 1, 1000))


@dataclass
class OrphanVM:
    provider: str
    vm_id: str


@dataclass
class OrphanFirewall:
    provider: str
    firewall_id: str


@dataclass
class Orphan:
    """An agent id some resource names while no running lifecycle owns it."""

    agent_id: str
    vms: list[OrphanVM] = field(default_factory=list)
    in_vault: bool = False
    data_items: int = 0
    # Open tool approvals of the agent (workflow ids): closed as cancelled, nothing may run for a gone agent.
    approvals: list[str] = field(default_factory=list)
    # The agent's provider firewalls (deleted after its VMs: Hetzner refuses while one is applied).
    firewalls: list[OrphanFirewall] = field(default_factory=list)


@dataclass
class OrphanReport:
    orphans: list[Orphan] = field(default_factory=list)
    # Agent ids named by any resource, and those of them a running lifecycle owns.
    agents_seen: int = 0
    live: int = 0
    truncated: bool = False


@dataclass
class RemoveOrphans:
    run_id: str
    dry_run: bool
    orphans: list[Orphan] = field(default_factory=list)


@dataclass
class SweepCounts:
    """What the sweep found on orphans (and removed, unless a dry run), per kind."""

    agents: int = 0
    vms: int = 0
    secrets: int = 0
    policies: int = 0
    roles: int = 0
    keys: int = 0
    tokens: int = 0
    data: int = 0
    approvals: int = 0
    firewalls: int = 0
    # Candidates whose lifecycle turned out to be running at the final check: left alone.
    skipped_live: int = 0
    agent_ids: list[str] = field(default_factory=list)

    def add(self, other: SweepCounts) -> None:
        kinds = (
            "agents",
            "vms",
            "firewalls",
            "secrets",
            "policies",
            "roles",
            "keys",
            "tokens",
            "data",
            "approvals",
            "skipped_live",
        )
        for name in kinds:
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.agent_ids = (self.agent_ids + other.agent_ids)[:REPORT_IDS_MAX]


@dataclass
class SweepResult:
    dry_run: bool
    found: SweepCounts = field(default_factory=SweepCounts)
    agents_seen: int = 0
    live: int = 0
    truncated: bool = False
    # Warm pools' VMs and identities no running pool held (`agent_ids` lists their slots).
    pools: SweepCounts = field(default_factory=SweepCounts)


# --- FleetHealth ---------------------------------------------------------------------------------------------------


@dataclass
class FleetHealthInput:
    # Each agent's own unhealthy_threshold decides when its lifecycle is told again (kept on its registry row). This
    # applies only to a row without one; kept as a field so schedules installed earlier still start.
    failure_threshold: int = 3
    concurrency: int = 100
    timeout_s: float = 2.0

    def invalid(self) -> str:
        return _out_of_range(
            failure_threshold=(self.failure_threshold, 1, 100),
            concurrency=(self.concurrency, 1, 10_000),
            timeout_s=(self.timeout_s, 0.1, 60),
        )


@dataclass
class FleetHealthResult:
    probed: int = 0
    healthy: int = 0
    unhealthy: int = 0
    signalled: int = 0
    # Lifecycles already closed when signalled (their agents leave the probed set on the next run).
    closed: int = 0
    # Signals that failed; the state of those agents is not saved, so the next run tries again.
    signal_failures: int = 0
    # Probe latency of this run (request sent to answer read, without the wait for a concurrency slot), milliseconds.
    probe_p50_ms: float = 0.0
    probe_p95_ms: float = 0.0
    probe_p99_ms: float = 0.0
    probe_max_ms: float = 0.0


# --- agent data ----------------------------------------------------------------------------------------------------


@dataclass
class AgentDataDeleted:
    agent_id: str
    items: int = 0


def _out_of_range(**fields: tuple[float, float, float]) -> str:
    for name, (value, low, high) in fields.items():
        if not low <= value <= high:
            return f"{name}: must be from {low} to {high}"
    return ""
