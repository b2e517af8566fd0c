"""Warm pools: ready VMs with no identity, one pool per (provider, region, size), handed to lifecycles at claim time.

A pool VM boots with a bootstrap of its own (`BootstrapConfig.pool_slot` set): its bridge logs in to Vault with a
pool identity whose policy can read one path only, its claim (`claim_path`). A claim writes the agent's single-use
wrapped SecretID there (never user-data, never history) and pokes the bridge (`POST /claim`, no body: a wake-up, not
a channel), which reads it, drops its pool token and introduces itself as the agent. Someone else unwrapping the
claim first leaves the bridge "compromised", exactly like an intercepted bootstrap credential.

Names here are the one definition: the pool's id and workflow id, the slot ids of its VMs, their VM names, labels and
Vault names. A pool VM's name starts `lobpool-` and an agent's `lobstack-`, so no agent id can collide with a slot.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Final, Literal

from contracts.regions import ProviderName
from contracts.spec import PROVIDERS, REGIONS, SIZES, SpecError

# Providers whose documented API lets a running VM take an agent's name, labels and firewall. DigitalOcean's cannot
# tag an existing droplet (its document has no /v2/tags), and cleanup finds an agent's VM by that tag; `local` VMs are
# processes keyed by their agent's id on disk.
POOL_PROVIDERS: Final[tuple[ProviderName, ...]] = ("hetzner", "vultr")

POOL_WORKFLOW_PREFIX: Final = "warm-pool-"
# The account the pools' audit events are recorded under (a pool belongs to the operator, not to a customer).
POOL_ACCOUNT: Final = "lobstack-pools"
POOL_LABEL: Final = "lobstack-pool"
POOL_SLOT_LABEL: Final = "lobstack-pool-slot"
POOL_VM_NAME_PREFIX: Final = "lobpool-"
# Vault: the pool identity's policy and role are `lobstack-pool-<slot>`; its claim is `<kv>/data/pool/<slot>/claim`.
POOL_VAULT_PREFIX: Final = "lobstack-pool-"
POOL_KV_PREFIX: Final = "pool/"

SLOT = re.compile(r"pv[0-9a-f]{12}")
SLOT_RULE: Final = "'pv' and 12 hexadecimal digits"

# Most VMs one pool may keep (ready and booting); a pool is a cache, not a fleet.
MAX_POOL_SIZE: Final = 100
# A pool VM's Vault token lives at most 4 hours (the agents' role settings), so a ready VM is recycled before that.
DEFAULT_MAX_IDLE_S: Final = 3 * 3600
MIN_MAX_IDLE_S: Final = 10
MAX_MAX_IDLE_S: Final = 3 * 3600

PoolVMStatus = Literal["booting", "ready", "claimed", "deleting"]


@dataclass(frozen=True)
class PoolKey:
    provider: ProviderName
    region: str
    size: str

    @property
    def pool_id(self) -> str:
        return f"{self.provider}-{self.region}-{self.size}"

    @property
    def workflow_id(self) -> str:
        return POOL_WORKFLOW_PREFIX + self.pool_id

    def __str__(self) -> str:
        return f"{self.provider}/{self.region}/{self.size}"


def pool_workflow_id(provider: str, region: str, size: str) -> str:
    return PoolKey(provider, region, size).workflow_id  # type: ignore[arg-type]  # validated by validate_pool_key


def validate_pool_key(provider: object, region: object, size: object) -> PoolKey:
    """The pool a (provider, region, size) names, or SpecError naming the bad field and what is allowed."""
    if provider not in POOL_PROVIDERS:
        why = "" if provider not in PROVIDERS else f" ({provider} VMs cannot take an agent's labels once running)"
        raise SpecError("provider", f"must be one of {', '.join(POOL_PROVIDERS)}{why}")
    if region not in REGIONS:
        raise SpecError("region", f"must be one of {', '.join(REGIONS)}")
    if size not in SIZES:
        raise SpecError("size", f"must be one of {', '.join(SIZES)}")
    return PoolKey(provider, region, size)


def is_slot(value: object) -> bool:
    return isinstance(value, str) and SLOT.fullmatch(value) is not None


def pool_vm_name(slot: str) -> str:
    return POOL_VM_NAME_PREFIX + slot


def pool_vault_name(slot: str) -> str:
    return POOL_VAULT_PREFIX + slot


# What a claim holds: the agent's identity fields of its BootstrapConfig, as written at `claim_path` and read by the
# pool VM's bridge (which keeps its own listen settings and agent socket).
CLAIM_FIELDS: Final[tuple[str, ...]] = (
    "agent_id",
    "role_id",
    "wrapped_secret_id",
    "expected_creation_path",
    "approle_mount",
    "kv_mount",
    "kv_prefix",
    "gateway_url",
)


def claim_path(slot: str) -> str:
    """The claim's KV path relative to the mount: the only thing a pool VM's token can read."""
    return f"{POOL_KV_PREFIX}{slot}/claim"


@dataclass
class PoolSize:
    """Body of the pool's `resize` update and of `lobstack pool set`."""

    min: int
    max: int
    max_idle_s: int = DEFAULT_MAX_IDLE_S


def validate_pool_size(size: PoolSize) -> None:
    for name in ("min", "max", "max_idle_s"):
        value = getattr(size, name)
        if isinstance(value, bool) or not isinstance(value, int):
            raise SpecError(name, "must be a whole number")
    if not 0 <= size.min <= MAX_POOL_SIZE:
        raise SpecError("min", f"must be between 0 and {MAX_POOL_SIZE}")
    if not size.min <= size.max <= MAX_POOL_SIZE:
        raise SpecError("max", f"must be between min ({size.min}) and {MAX_POOL_SIZE}")
    if not MIN_MAX_IDLE_S <= size.max_idle_s <= MAX_MAX_IDLE_S:
        raise SpecError(
            "max_idle_s",
            f"must be between {MIN_MAX_IDLE_S} and {MAX_MAX_IDLE_S} seconds (a pool VM's token lives 4 hours at most)",
        )


@dataclass
class PoolVMRequest:
    """Create (or find again) one pool VM: deterministic name `lobpool-<slot>` and the pool's labels."""

    key: PoolKey
    slot: str


@dataclass
class PoolVMLookup:
    """One pool VM at its provider: by id when known, else by its slot label."""

    provider: ProviderName
    slot: str
    vm_id: str = ""


@dataclass
class PoolVMRef:
    """A pool VM as the pool workflow keeps it: references only."""

    slot: str
    vm_id: str = ""
    address: str = ""
    status: PoolVMStatus = "booting"
    since: datetime | None = None
    # Set once claimed: the lifecycle that holds it.
    agent_id: str = ""


@dataclass
class ClaimRequest:
    """Body of the pool's `claim` update: the lifecycle asking for a VM. The same agent gets the same VM again.

    `pool_id` says which pool the claim activity asks (the update itself ignores it)."""

    agent_id: str = ""
    account_id: str = ""
    pool_id: str = ""


@dataclass
class PoolCarry:
    """What a pool hands to its next run at continue-as-new: its VMs and its counters."""

    vms: list[PoolVMRef] = field(default_factory=list)
    claims: int = 0
    empty_claims: int = 0
    failing: int = 0
    failed: int = 0
    next_create_at: datetime | None = None
    paused_until: datetime | None = None
    last_error: str = ""


@dataclass
class PoolTuning:
    """How a pool paces itself; the defaults suit production, tests shorten them."""

    # A pool VM must answer healthy this long after it runs, or it is replaced.
    health_timeout_s: int = 120
    # Ready VMs are probed this often; one that stopped answering is replaced before a lifecycle claims it.
    probe_every_s: int = 60
    # A claimed VM still carrying the pool's labels this long after its claim was never adopted: deleted.
    claim_grace_s: int = 300
    # Failed creates back off from `backoff_first_s`, doubling up to `backoff_max_s`; `pause_after` in a row pause
    # the pool for `pause_s` (or until `lobstack pool set`).
    backoff_first_s: int = 5
    backoff_max_s: int = 300
    pause_after: int = 5
    pause_s: int = 1800


@dataclass
class PoolInput:
    """The WarmPool workflow's input: which pool, how big, and what an earlier run carried over."""

    key: PoolKey | None = None
    size: PoolSize | None = None
    carry: PoolCarry | None = None
    tuning: PoolTuning = field(default_factory=PoolTuning)

    def invalid(self) -> str:
        if self.key is None or self.size is None:
            return "key and size are required"
        try:
            validate_pool_key(self.key.provider, self.key.region, self.key.size)
            validate_pool_size(self.size)
        except SpecError as err:
            return str(err)
        return ""


@dataclass
class PoolClaim:
    """What a claim got: a ready VM, or none and why (the lifecycle then creates one cold)."""

    vm: PoolVMRef | None = None
    pool_id: str = ""
    reason: str = ""


@dataclass
class AdoptRequest:
    """Make a claimed pool VM the agent's at the provider: its name, its labels (pool labels gone), its firewall."""

    provider: ProviderName
    vm_id: str
    slot: str
    agent_id: str
    account_id: str
    firewall_id: str = ""


@dataclass
class DeliverClaim:
    """Deliver the agent's bootstrap to a claimed pool VM: mint the single-use SecretID, write it to the slot's claim
    path, poke the bridge at `address`."""

    agent_id: str
    slot: str
    address: str


@dataclass
class PoolStatus:
    """The pool's `status` query: what `lobstack pool status` and the Web UI show."""

    pool_id: str
    provider: str
    region: str
    size: str
    min: int
    max: int
    max_idle_s: int
    ready: int = 0
    booting: int = 0
    claimed: int = 0
    # Claims served from this pool since it started, and claims it had no VM for.
    claims: int = 0
    empty_claims: int = 0
    # Creates that failed in a row, all failures since start, and whether the pool stopped trying for now.
    failing: int = 0
    failed: int = 0
    paused_until: datetime | None = None
    last_error: str = ""
    deleting: bool = False
    vms: list[PoolVMRef] = field(default_factory=list)


__all__ = [
    "CLAIM_FIELDS",
    "MAX_POOL_SIZE",
    "POOL_LABEL",
    "POOL_PROVIDERS",
    "POOL_SLOT_LABEL",
    "AdoptRequest",
    "ClaimRequest",
    "DeliverClaim",
    "PoolCarry",
    "PoolClaim",
    "PoolInput",
    "PoolKey",
    "PoolSize",
    "PoolStatus",
    "PoolTuning",
    "PoolVMLookup",
    "PoolVMRef",
    "PoolVMRequest",
    "claim_path",
    "is_slot",
    "pool_vault_name",
    "pool_vm_name",
    "pool_workflow_id",
    "validate_pool_key",
    "validate_pool_size",
]
