"""The provider-neutral face of a VM provider: one protocol every adapter implements, and our own VM record.

Adapters return `VM`, never an SDK object, and raise only `activities.errors.ProviderError` subclasses.
Idempotency rests on two things every adapter keeps: a deterministic name and the `lobstack-agent=<id>` label,
so a retried create finds the VM the first attempt made instead of making a second one. Finding, adopting and
replacing are the create activity's (`activities.cloud.activities`); an adapter's `create` only creates.

Warm pools (`contracts.pool`): a pool VM is made like an agent's (same image, plan mapping and cloud-init) but named
`lobpool-<slot>` and labelled with its pool and slot instead of an agent; `adopt` then gives it an agent's name, labels
and firewall. Only providers whose API can relabel a running VM have pools (`contracts.pool.POOL_PROVIDERS`); the
others refuse to make or adopt one and have none to list. `list_managed` stays "agent-labelled VMs": a count of what
a provider holds for Lobstack adds `list_pool_vms`.

Each adapter also reads its provider's catalog (`activities.cloud.catalog`): what it sells where and at which price,
cached for an hour, to refuse a size a location does not sell before anything is created and to price a VM.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

from activities.cloud.catalog import Money, Offer
from contracts.bootstrap import BootstrapConfig
from contracts.identifiers import ACCOUNT_LABEL, AGENT_LABEL, vm_name
from contracts.models import CreateVMRequest
from contracts.pool import PoolKey
from contracts.regions import ProviderName

# The labels and the VM name are defined once in contracts.identifiers; re-exported for the adapters.
__all__ = ["ACCOUNT_LABEL", "AGENT_LABEL", "VM", "CloudProvider", "VMStatus", "vm_name"]

# "stopped": exists but not running (crashed process, powered-off server); it will not become healthy by waiting.
VMStatus = Literal["creating", "running", "stopped", "gone"]


@dataclass(frozen=True)
class VM:
    provider: ProviderName
    vm_id: str
    name: str
    agent_id: str
    status: VMStatus
    address: str = ""
    # The provider's location code (hel1, fra), where the adapter's answer says it.
    location: str = ""
    # A pool VM's slot and pool (its labels); both empty on an agent's VM, `agent_id` empty on an unclaimed pool VM.
    slot: str = ""
    pool_id: str = ""


class CloudProvider(Protocol):
    name: ProviderName

    def find(self, agent_id: str) -> VM | None:
        """The agent's VM if one exists (by label), whatever its status."""
        ...

    def create(self, request: CreateVMRequest, bootstrap: BootstrapConfig) -> VM:
        """Create the agent's VM carrying `bootstrap` as its user-data; nothing more (no look-up, no adoption).

        Raises `VMNameTaken` where a name can be held (Hetzner's unique names; a live local VM). The caller looks up
        first: DigitalOcean and Vultr would make a second VM.
        """
        ...

    def get(self, vm_id: str) -> VM | None:
        """Current state of a VM, or None when it no longer exists."""
        ...

    def delete(self, vm_id: str) -> bool:
        """Delete a VM; False when it was already gone (not an error)."""
        ...

    def list_managed(self) -> list[VM]:
        """Every VM carrying the agent label, for verification and the orphan sweep."""
        ...

    # --- warm pools ---------------------------------------------------------------------------------------------------

    def create_pool_vm(self, key: PoolKey, slot: str, location: str, bootstrap: BootstrapConfig) -> VM:
        """Create a pool VM: name `pool_vm_name(slot)`, labels {POOL_LABEL: key.pool_id, POOL_SLOT_LABEL: slot} and no
        agent or account label; image, plan (from `key.size`) and user-data as an agent's VM. Nothing more: the caller
        looks up by slot first. Raises `VMNameTaken` where names are unique, `ProviderRejected` where the provider has
        no pools."""
        ...

    def find_pool_vm(self, slot: str) -> VM | None:
        """The slot's VM if one exists (by its slot label), whatever its status; None once adopted."""
        ...

    def list_pool_vms(self) -> list[VM]:
        """Every VM carrying the pool label (unclaimed pool VMs), for leftover counts and the sweep."""
        ...

    def adopt(self, vm_id: str, agent_id: str, account_id: str, firewall_id: str) -> VM:
        """Make a pool VM the agent's: name `vm_name(agent_id)`, the agent's labels exactly as `create` sets them (pool
        labels removed) and the agent's firewall (none when `firewall_id` is empty). Idempotent; `find(agent_id)`
        finds it afterwards. A VM that is gone raises `ProviderRejected`."""
        ...

    def catalog(self) -> list[Offer]:
        """Every plan in every location that sells it, with its monthly price; read through the SDK, cached."""
        ...

    def offers(self, location: str) -> list[Offer]:
        """The plans sold in `location`, cheapest first."""
        ...

    def offer(self, location: str, plan: str) -> Offer:
        """`plan` as sold in `location`; raises `PlanNotOffered`, listing what is sold there, when it is not."""
        ...

    def monthly_price(self, location: str, plan: str) -> Money:
        """What one VM of `plan` in `location` costs a month (raises `PlanNotOffered` like `offer`)."""
        ...
