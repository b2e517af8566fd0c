"""Pool VM activities: create, adopt, delete and verify the VMs of a warm pool (`contracts.pool`).

A pool VM is made like an agent's VM but named `lobpool-<slot>` and labelled with its pool and slot, carrying a *pool*
bootstrap (minted here, inside the activity, so it never reaches history). The slot label is the idempotency key, as
the agent label is for an agent's VM: a retried create finds what a lost answer made instead of making a second VM.

Claiming hands the VM to an agent at the provider (`adopt_pool_vm`): it takes the agent's name, labels and firewall
and loses its pool labels, so from then on it is found by the agent's label (the lifecycle's cleanup) and no longer
by its slot (the pool's delete and verification can never touch a claimed VM).

Waiting for a pool VM to run is `CloudActivities.wait_vm_running(VMLookup(provider, agent_id=slot, vm_id=...))`: it
polls by id only, the agent id appearing in its messages alone.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Protocol

from temporalio import activity

from activities.cloud.adapter_support import first_location
from activities.cloud.base import VM, CloudProvider
from activities.cloud.calls import counting
from activities.cloud.catalog import Offer, plan_name
from activities.errors import ProviderRejected, VMLeftBehind, VMNameTaken
from contracts.bootstrap import BootstrapConfig
from contracts.models import Residue, VMDeleted, VMRef
from contracts.pool import POOL_PROVIDERS, SLOT_RULE, AdoptRequest, PoolVMLookup, PoolVMRef, PoolVMRequest, is_slot


class PoolBootstrapIssuer(Protocol):
    def issue_pool_bootstrap(self, slot: str) -> BootstrapConfig:
        """A pool VM's bootstrap: the pool identity's role id and single-use wrapped SecretID, `pool_slot` set."""
        ...


def _slot(slot: str) -> str:
    if not is_slot(slot):
        raise ProviderRejected(f"slot: {slot!r} is not {SLOT_RULE}")
    return slot


class PoolVMActivities:
    def __init__(
        self,
        *,
        providers: Mapping[str, CloudProvider],
        bootstrap: PoolBootstrapIssuer,
        gateway_url: str = "",
        vm_boot_s: Mapping[str, float] | None = None,
    ) -> None:
        self.providers = dict(providers)
        self.bootstrap = bootstrap
        self.gateway_url = gateway_url
        # Per provider, the typical seconds from create to running (activities/cloud/boot_time.py), as the worker
        # gives CloudActivities; kept for the pool's callers, the waiting itself is CloudActivities.wait_vm_running.
        self.vm_boot_s = dict(vm_boot_s or {})

    def _provider(self, name: str) -> CloudProvider:
        try:
            return self.providers[name]
        except KeyError:
            raise ProviderRejected(f"provider {name!r} is not configured on this worker") from None

    @activity.defn
    def create_pool_vm(self, request: PoolVMRequest) -> PoolVMRef:
        """The slot's VM, made at most once: look it up by slot label, keep a live one or replace a stopped one,
        then create with a fresh pool bootstrap (like `CloudActivities.create_vm` for an agent's VM)."""
        key, slot = request.key, _slot(request.slot)
        if key.provider not in POOL_PROVIDERS:
            # Before anything is looked up or a pool credential minted; the adapter would refuse too, but later.
            raise ProviderRejected(f"no warm pools on {key.provider}: pools exist on {', '.join(POOL_PROVIDERS)}")
        provider = self._provider(key.provider)
        location = first_location(key.provider, key.region)
        self._offer(provider, location, key.size)  # outside counting(): the catalog is cached for an hour
        with counting() as calls:
            existing = provider.find_pool_vm(slot)
            if existing is not None and existing.status != "stopped":
                # A previous attempt made it (its answer may have been lost): keep it, never make a second one.
                activity.logger.info("pool %s slot %s: keeping existing VM %s", key.pool_id, slot, existing.vm_id)
                return _pool_ref(slot, existing)
            if existing is not None:
                activity.logger.info("pool %s slot %s: replacing stopped VM %s", key.pool_id, slot, existing.vm_id)
                provider.delete(existing.vm_id)
            bootstrap = self.bootstrap.issue_pool_bootstrap(slot)
            if self.gateway_url:
                bootstrap = replace(bootstrap, gateway_url=self.gateway_url)
            try:
                vm = provider.create_pool_vm(key, slot, location, bootstrap)
            except VMNameTaken:
                # Another attempt made it after our look-up; its unused pool credential expires on its own.
                raced = provider.find_pool_vm(slot)
                if raced is None or raced.status == "stopped":
                    raise
                vm = raced
        activity.logger.info("pool %s slot %s: VM %s (%d API calls)", key.pool_id, slot, vm.vm_id, calls.total)
        return _pool_ref(slot, vm)

    @staticmethod
    def _offer(provider: CloudProvider, location: str, size: str) -> Offer:
        """The pool's plan as sold at its location, or `PlanNotOffered` (never retried), before anything is made."""
        return provider.offer(location, plan_name(provider.name, size))

    @activity.defn
    def adopt_pool_vm(self, request: AdoptRequest) -> VMRef:
        """Make the claimed pool VM the agent's at the provider: its name, labels and firewall. Idempotent.

        Looks first, and adopts only the slot's own VM or one already the agent's (a retry after success): an id that
        now names another agent's VM, or another slot's, is refused rather than relabelled.
        """
        provider = self._provider(request.provider)
        with counting() as calls:
            current = provider.get(request.vm_id)
            if current is None:
                raise ProviderRejected(f"VM {request.vm_id} of pool slot {request.slot} is gone")
            ours = current.slot == request.slot or (not current.slot and current.agent_id == request.agent_id)
            if not ours:
                raise ProviderRejected(
                    f"VM {request.vm_id} is not pool slot {request.slot}'s nor agent {request.agent_id}'s "
                    f"(slot {current.slot or '-'}, agent {current.agent_id or '-'})"
                )
            vm = provider.adopt(request.vm_id, request.agent_id, request.account_id, request.firewall_id)
        activity.logger.info("VM %s of pool slot %s adopted by agent %s", vm.vm_id, request.slot, request.agent_id)
        return VMRef(vm.provider, vm.vm_id, vm.name, vm.address, location=vm.location, api_calls=calls.total)

    @activity.defn
    def delete_pool_vm(self, lookup: PoolVMLookup) -> VMDeleted:
        """Delete the slot's VM, found by its slot label; gone already counts as success.

        Never by id alone: a VM claimed since has lost its slot label and belongs to its agent now, and its id must
        not delete it. So `lookup.vm_id` only names what is expected in the log; the look-up costs the same one call
        a status check by id would.
        """
        provider = self._provider(lookup.provider)
        slot = _slot(lookup.slot)
        vm_ids: list[str] = []
        with counting() as calls:
            found = provider.find_pool_vm(slot)
            if found is not None and provider.delete(found.vm_id):
                vm_ids.append(found.vm_id)
        if vm_ids:
            activity.logger.info("deleted pool VM %s of slot %s on %s", vm_ids, slot, lookup.provider)
        elif lookup.vm_id:
            activity.logger.info("pool VM %s of slot %s: already gone or claimed", lookup.vm_id, slot)
        return VMDeleted(bool(vm_ids), calls.total, vm_ids=vm_ids)

    @activity.defn
    def verify_pool_vm_gone(self, lookup: PoolVMLookup) -> Residue:
        """Prove no VM carries the slot's label: one look-up. A VM found fails the step (`VMLeftBehind`): the caller
        deletes again and proves again, as cleanup does for an agent's VM."""
        provider = self._provider(lookup.provider)
        slot = _slot(lookup.slot)
        with counting() as calls:
            found = provider.find_pool_vm(slot)
        if found is not None:
            raise VMLeftBehind(f"VM {found.vm_id} of pool slot {slot} still exists ({found.status})")
        return Residue(api_calls=calls.total)


def _pool_ref(slot: str, vm: VM) -> PoolVMRef:
    return PoolVMRef(slot=slot, vm_id=vm.vm_id, address=vm.address, status="booting")


__all__ = ["PoolBootstrapIssuer", "PoolVMActivities"]
