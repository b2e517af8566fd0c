"""Cloud activities: create, wait for, delete and verify an agent's VM on whichever provider its spec names.

The bootstrap credential is minted here, inside the create activity, and goes straight into the VM's user-data:
it never passes through the workflow, so it never reaches Temporal history.

Every API call counts against the provider's budget, so a lifecycle makes as few as its safety allows (5 where 4 is
the floor): one look-up before create (adopts what a lost create made), the create, status looks that start at the
provider's typical boot time (usually one), delete by id, and one look-up by label proving no VM of the agent is
left (it also finds a VM a lost create made: cleanup then deletes that one and proves again).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import functools
import time
from collections.abc import Mapping
from dataclasses import replace
from typing import Protocol, TypeVar

from temporalio import activity

from activities.cloud.adapter_support import first_location
from activities.cloud.base import VM, CloudProvider
from activities.cloud.calls import counting
from activities.cloud.catalog import Offer, plan_name
from activities.cloud.local import LOCAL_LOCATION
from activities.errors import ProviderRateLimited, ProviderRejected, ProviderUnavailable, VMLeftBehind, VMNameTaken
from activities.polling import PollSchedule
from contracts.bootstrap import BootstrapConfig
from contracts.models import CreateVMRequest, Residue, VMDeleted, VMLookup, VMRef

T = TypeVar("T")

# A VM ready T seconds into the wait is seen by T + max(0.2 s, T / 10): a 5 s boot costs about 20 status calls and
# is seen at most 0.5 s late; a 60 s boot about 45 calls, 5 s late at worst (the ceiling is `max_poll_interval_s`).
VM_POLL_FRACTION = 0.1
VM_POLL_FLOOR_S = 0.2
# Status polls that fail in a row (5xx, 429 past the budget's own wait) before the attempt gives up.
MAX_POLL_FAILURES = 5


class BootstrapIssuer(Protocol):
    def issue_bootstrap(self, agent_id: str) -> BootstrapConfig: ...


def _ref(vm: VM, api_calls: int, location: str = "") -> VMRef:
    return VMRef(vm.provider, vm.vm_id, vm.name, vm.address, location=location, api_calls=api_calls)


class CloudActivities:
    def __init__(
        self,
        *,
        providers: Mapping[str, CloudProvider],
        bootstrap: BootstrapIssuer,
        gateway_url: str = "",
        max_poll_interval_s: float = 5.0,
        poll_threads: int = 8,
        vm_boot_s: Mapping[str, float] | None = None,
    ) -> None:
        self.providers = dict(providers)
        self.bootstrap = bootstrap
        self.gateway_url = gateway_url
        self.max_poll_interval_s = max_poll_interval_s
        # Per provider, the typical seconds from create to running (activities/cloud/boot_time.py): the first status
        # look waits that long. Absent: look at once.
        self.vm_boot_s = dict(vm_boot_s or {})
        self.poll_schedule = PollSchedule(
            VM_POLL_FRACTION, min(VM_POLL_FLOOR_S, max_poll_interval_s), max_poll_interval_s
        )
        # wait_vm_running sleeps on the event loop and borrows one of these threads only for each blocking status
        # call, so a hundred booting VMs do not hold a hundred threads of the worker's activity pool between polls.
        self._poll_pool = concurrent.futures.ThreadPoolExecutor(max_workers=poll_threads, thread_name_prefix="vm-poll")

    async def _blocking(self, fn: functools.partial[T]) -> T:
        # The context goes along: it carries the activity's call counter (activities.cloud.calls).
        ctx = contextvars.copy_context()
        return await asyncio.get_running_loop().run_in_executor(self._poll_pool, ctx.run, fn)

    def _provider(self, name: str) -> CloudProvider:
        try:
            return self.providers[name]
        except KeyError:
            raise ProviderRejected(f"provider {name!r} is not configured on this worker") from None

    @activity.defn
    def create_vm(self, request: CreateVMRequest) -> VMRef:
        """The agent's VM, made at most once: look it up, adopt a live one or replace a dead one, then create.

        The one place that decides this; adapters only create. DigitalOcean and Vultr names are not unique, so this
        look-up is the only guard against a second VM there; Hetzner's unique names also catch two attempts racing
        past it (`VMNameTaken`), and the VM the other attempt made is adopted.
        """
        provider = self._provider(request.provider)
        # Outside `counting()`: the catalog is read once an hour per worker, not once per lifecycle (its requests
        # still count in the adapter's total, and cloudsim counts them under `catalog`).
        self._offer(provider, request)
        with counting() as calls:
            existing = provider.find(request.agent_id)
            if existing is not None and existing.status != "stopped":
                # A previous attempt made it (its response may have been lost): adopt, never duplicate.
                return self._adopted(existing, request, calls.total)
            if existing is not None:
                # A dead VM will not become healthy by waiting: it goes, and frees its name for the new one.
                activity.logger.info("replacing stopped VM %s of agent %s", existing.vm_id, request.agent_id)
                provider.delete(existing.vm_id)
            bootstrap = self.bootstrap.issue_bootstrap(request.agent_id)
            if self.gateway_url:
                bootstrap = replace(bootstrap, gateway_url=self.gateway_url)
            try:
                vm = provider.create(request, bootstrap)
            except VMNameTaken:
                # Another attempt made it after our look-up; its unused bootstrap credential expires on its own.
                raced = provider.find(request.agent_id)
                if raced is None or raced.status == "stopped":
                    raise  # held by a VM being deleted or not made by us: retried, then the next placement
                return self._adopted(raced, request, calls.total)
        activity.logger.info("created VM %s for agent %s", vm.vm_id, request.agent_id)
        return _ref(vm, calls.total, request.location)

    @staticmethod
    def _offer(provider: CloudProvider, request: CreateVMRequest) -> Offer:
        """The request's plan as sold at its location, or `PlanNotOffered` listing what is: checked before anything
        is looked up or created, so a size the location does not sell fails (or fails over) at once, never retried."""
        location = request.location
        if not location:
            local = request.provider == "local"
            location = LOCAL_LOCATION if local else first_location(request.provider, request.region)
        return provider.offer(location, plan_name(request.provider, request.size))

    @staticmethod
    def _adopted(vm: VM, request: CreateVMRequest, api_calls: int) -> VMRef:
        activity.logger.info("adopting existing VM %s for agent %s", vm.vm_id, request.agent_id)
        return _ref(vm, api_calls, request.location)

    @activity.defn
    async def wait_vm_running(self, lookup: VMLookup) -> VMRef:
        """Poll until the VM runs and has an address; heartbeats so a dead worker is noticed and another resumes.

        Polls on `poll_schedule`: each poll is an API call out of the provider's budget, and a pause a fixed fraction
        of the time waited so far keeps both the call count and how late a booted VM is seen bounded. The first poll
        waits for the provider's typical boot time (the VM booted while the create's answer travelled and this wait
        was scheduled), so a usual boot costs one call; a retried attempt looks at once, the VM being older by then.
        Hetzner's create action is not polled instead: a look at it costs the same one call as a look at the server
        and says less (not that the server stopped or vanished), so it is never the cheaper wait here.
        """
        provider = self._provider(lookup.provider)
        schedule = self.poll_schedule
        if activity.info().attempt == 1:
            schedule = replace(schedule, first_s=self.vm_boot_s.get(lookup.provider, 0.0))
        started = time.monotonic()
        failed = 0
        with counting() as calls:
            await self._heartbeating_sleep(schedule.first_s, "booting: first status look at the typical boot time")
            while True:
                pause = schedule.delay(time.monotonic() - started)
                try:
                    vm = await self._blocking(functools.partial(provider.get, lookup.vm_id))
                except (ProviderUnavailable, ProviderRateLimited) as err:
                    # One failed look says nothing about the VM: look again later. Only a run of them ends the attempt
                    # (Temporal retries it), so a provider's usual 5xx rate cannot fail a boot that is going fine.
                    failed += 1
                    if failed >= MAX_POLL_FAILURES:
                        raise
                    activity.heartbeat(f"status poll failed ({type(err).__name__}), {failed} in a row")
                    await asyncio.sleep(max(pause, getattr(err, "retry_after_s", 0.0)))
                    continue
                failed = 0
                if vm is None:
                    raise ProviderRejected(f"VM {lookup.vm_id} of agent {lookup.agent_id} disappeared while booting")
                if vm.status == "stopped":
                    raise ProviderRejected(f"VM {lookup.vm_id} of agent {lookup.agent_id} stopped while booting")
                if vm.status == "running" and vm.address:
                    return _ref(vm, calls.total)
                activity.heartbeat(vm.status)
                await asyncio.sleep(pause)

    async def _heartbeating_sleep(self, seconds: float, note: str) -> None:
        """Sleep, heartbeating at least every `max_poll_interval_s`, well inside the wait's heartbeat timeout."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            activity.heartbeat(note)
            await asyncio.sleep(min(left, self.max_poll_interval_s))

    @activity.defn
    def delete_vm(self, lookup: VMLookup) -> VMDeleted:
        """Delete the agent's VM: by id when the workflow knows it (one call), else the one a look-up by label finds.

        Gone already counts as success. Another VM of the agent (one a lost create made) is not looked for here:
        verify_vm_gone's look-up by label finds it, and cleanup comes back here with the id already gone, which
        makes this look by label and delete what it finds.
        """
        provider = self._provider(lookup.provider)
        vm_ids: list[str] = []
        with counting() as calls:
            if lookup.vm_id and provider.delete(lookup.vm_id):
                vm_ids.append(lookup.vm_id)
            else:
                found = provider.find(lookup.agent_id)
                if found is not None and provider.delete(found.vm_id):
                    vm_ids.append(found.vm_id)
        if vm_ids:
            activity.logger.info("deleted VM(s) %s of agent %s on %s", vm_ids, lookup.agent_id, lookup.provider)
        return VMDeleted(bool(vm_ids), calls.total, vm_ids=vm_ids)

    @activity.defn
    def verify_vm_gone(self, lookup: VMLookup) -> Residue:
        """Prove no VM of the agent exists on this provider: one look-up by label, which every VM of the agent
        carries, one made by a create whose answer was lost included.

        Only looks: a VM found fails the step (`VMLeftBehind`), and cleanup deletes again (delete_vm, its id being
        gone by then, deletes what a look-up by label finds) and proves again. Deleting here would hide the VM from
        the caller, and a VM that may have run the agent's bridge must be known, so its tokens are revoked.
        """
        provider = self._provider(lookup.provider)
        with counting() as calls:
            found = provider.find(lookup.agent_id)
        if found is not None:
            raise VMLeftBehind(f"VM {found.vm_id} of agent {lookup.agent_id} still exists ({found.status})")
        return Residue(api_calls=calls.total)


__all__ = ["BootstrapIssuer", "CloudActivities"]
