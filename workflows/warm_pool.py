"""WarmPool: keeps between `min` and `max` ready VMs of one (provider, region, size), and hands each to one lifecycle.

A pool VM is booted with a pool identity and no agent's (contracts/pool.py), health-checked, probed again every minute
and replaced when unhealthy, recycled after `max_idle_s` so its image stays fresh, and deleted with its pool identity
when the pool shrinks or is deleted. A lifecycle claims one through the `claim` update: the handler only moves a ready
VM to `claimed` for that agent, so exactly one lifecycle gets each VM, and the same agent asking again (a retried
activity, a worker killed mid-claim) gets the same VM. A claimed VM is the lifecycle's: it takes the agent's name and
labels, and its destroy deletes it. Never back to the pool. One the lifecycle never adopted (it was terminated) still
carries the pool's labels after a grace (5 min) and is deleted here.

Failed creates back off (5 s doubling to 5 min) and after 5 in a row pause the pool for 30 min (`PoolTuning`), audited
and shown in the current details: a broken image or an exhausted quota costs one create per pause, not one per second.
Every VM and identity the pool made is deleted and verified gone before the VM leaves its books.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Coroutine
from datetime import datetime, timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import VersioningBehavior
from temporalio.exceptions import ActivityError, ApplicationError
from temporalio.workflow import ActivityCancellationType

from contracts.workflow_names import (
    POOL_CLAIM_UPDATE,
    POOL_DELETE_UPDATE,
    POOL_RESIZE_UPDATE,
    STATUS_QUERY,
    WARM_POOL,
)

with workflow.unsafe.imports_passed_through():
    from activities.cloud.activities import CloudActivities
    from activities.cloud.pool_vms import PoolVMActivities
    from activities.health import HealthActivities
    from activities.registry import RegistryActivities
    from activities.secrets.pool_activities import PoolSecretsActivities
    from contracts.messages import MessageRefused, one_message
    from contracts.models import AgentState, HealthCheckRequest, Transition, VMLookup
    from contracts.pool import (
        POOL_ACCOUNT,
        ClaimRequest,
        PoolCarry,
        PoolClaim,
        PoolInput,
        PoolKey,
        PoolSize,
        PoolStatus,
        PoolVMLookup,
        PoolVMRef,
        PoolVMRequest,
        is_slot,
        validate_pool_size,
    )
    from contracts.queues import cloud_queue
    from contracts.spec import SpecError, validate_agent_id
    from workflows.inputs import start_input
    from workflows.retries import (
        BOOT_WAIT_RETRY,
        CLEANUP_RETRY,
        FLEET_PROBE_RETRY,
        POOL_CREATE_RETRY,
        PROVISION_RETRY,
        REGISTRY_RETRY,
        VERIFY_RETRY,
    )

CLAIM_EXAMPLE = '{"agent_id": "a1", "account_id": "acme"}'
RESIZE_EXAMPLE = '{"min": 2, "max": 4, "max_idle_s": 10800}'


@workflow.defn(name=WARM_POOL, versioning_behavior=VersioningBehavior.AUTO_UPGRADE)
class WarmPoolWorkflow:
    @workflow.init
    def __init__(self, *args: Any) -> None:
        # A wrong start input fails the run in `run` with its reason, never a workflow task (contracts/messages.py).
        try:
            self._input = start_input(args, PoolInput)
            self._invalid: ApplicationError | None = None
        except ApplicationError as err:
            self._input = PoolInput(PoolKey("hetzner", "eu-central", "small"), PoolSize(0, 0))
            self._invalid = err
        assert self._input.key is not None and self._input.size is not None  # start_input checked both
        self._key = self._input.key
        self._size = self._input.size
        self._tune = self._input.tuning
        carry = self._input.carry or PoolCarry()
        self._vms: dict[str, PoolVMRef] = {vm.slot: vm for vm in carry.vms if is_slot(vm.slot)}
        self._counts = carry
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._next_probe: datetime | None = None
        self._wake = False
        self._deleting = False
        self._events = 0

    # --- the loop -------------------------------------------------------------------------------------------------

    @workflow.run
    async def run(self, *args: Any) -> PoolStatus:
        if self._invalid is not None:
            raise self._invalid
        # What the previous run left in flight resumes: a boot looks its slot up before creating (never a second VM).
        for vm in list(self._vms.values()):
            if vm.status == "booting":
                self._start(vm.slot, self._boot(vm))
            elif vm.status == "deleting":
                self._start(vm.slot, self._retire(vm, "resumed"))
        try:
            while not self._deleting:
                self._reconcile()
                self._show()
                if workflow.info().is_continue_as_new_suggested() and not self._tasks:
                    await workflow.wait_condition(workflow.all_handlers_finished)
                    workflow.continue_as_new(PoolInput(self._key, self._size, self._carry(), self._tune))
                self._wake = False
                with contextlib.suppress(asyncio.TimeoutError):
                    await workflow.wait_condition(lambda: self._wake or self._deleting, timeout=self._next_due())
        except asyncio.CancelledError:
            # Cancelled (not terminated): delete everything anyway, then end cancelled.
            self._deleting = True
            await asyncio.shield(asyncio.ensure_future(self._drain()))
            raise
        return await self._drain()

    def _reconcile(self) -> None:
        if workflow.info().is_continue_as_new_suggested():
            return  # no new work while the run waits for what is in flight, to hand its books to the next run
        now = workflow.now()
        ready = sorted((vm for vm in self._vms.values() if vm.status == "ready"), key=_since)
        for vm in ready:
            if _since(vm) + timedelta(seconds=self._size.max_idle_s) <= now:
                self._start(vm.slot, self._retire(vm, f"recycled after {self._size.max_idle_s}s idle"))
        ready = [vm for vm in ready if vm.status == "ready"]
        booting = [vm for vm in self._vms.values() if vm.status == "booting"]
        # Shrinking: the oldest ready VMs go first; booting ones are retired once ready, if still too many.
        for vm in ready[: max(0, len(ready) + len(booting) - self._size.max)]:
            self._start(vm.slot, self._retire(vm, f"pool shrunk to max {self._size.max}"))
        for vm in self._vms.values():
            if vm.status == "claimed" and _since(vm) + timedelta(seconds=self._tune.claim_grace_s) <= now:
                self._start(vm.slot, self._release(vm))
        if self._next_probe is None or now >= self._next_probe:
            self._next_probe = now + timedelta(seconds=self._tune.probe_every_s)
            for vm in self._vms.values():
                if vm.status == "ready" and vm.slot not in self._tasks:
                    self._start(vm.slot, self._probe(vm))
        if not self._may_create(now):
            return  # backing off or paused
        live = sum(1 for vm in self._vms.values() if vm.status in ("ready", "booting"))
        for _ in range(self._size.min - live):
            slot = "pv" + format(workflow.random().getrandbits(48), "012x")
            vm = self._vms[slot] = PoolVMRef(slot, status="booting", since=now)
            self._start(slot, self._boot(vm))

    def _may_create(self, now: datetime) -> bool:
        c = self._counts
        return not (c.paused_until and now < c.paused_until) and not (c.next_create_at and now < c.next_create_at)

    def _next_due(self) -> timedelta:
        """Until the next thing the loop must do on its own: a recycle, a probe, a claim's grace, a backoff's end."""
        now = workflow.now()
        due = [self._next_probe or now]
        due += [
            _since(vm) + timedelta(seconds=self._size.max_idle_s) for vm in self._vms.values() if vm.status == "ready"
        ]
        due += [
            _since(vm) + timedelta(seconds=self._tune.claim_grace_s)
            for vm in self._vms.values()
            if vm.status == "claimed"
        ]
        due += [t for t in (self._counts.next_create_at, self._counts.paused_until) if t and t > now]
        return max(min(due) - now, timedelta(seconds=1))

    def _start(self, slot: str, work: Coroutine[Any, Any, None]) -> None:
        if slot in self._tasks:
            work.close()  # one piece of work per VM at a time; the loop comes back to it
            return

        def done(_: asyncio.Task[None]) -> None:
            self._tasks.pop(slot, None)
            self._wake = True

        task = asyncio.ensure_future(work)
        self._tasks[slot] = task
        task.add_done_callback(done)

    # --- one VM ---------------------------------------------------------------------------------------------------

    async def _boot(self, vm: PoolVMRef) -> None:
        provider = self._key.provider
        queue = cloud_queue(provider, workflow.info().task_queue)
        try:
            await workflow.execute_activity_method(
                PoolSecretsActivities.mint_pool_identity,
                vm.slot,
                start_to_close_timeout=timedelta(seconds=30),
                retry_policy=PROVISION_RETRY,
            )
            made: PoolVMRef = await workflow.execute_activity_method(
                PoolVMActivities.create_pool_vm,
                PoolVMRequest(self._key, vm.slot),
                task_queue=queue,
                start_to_close_timeout=timedelta(minutes=2),
                retry_policy=POOL_CREATE_RETRY,
                cancellation_type=ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
            )
            vm.vm_id = made.vm_id
            booted = await workflow.execute_activity_method(
                CloudActivities.wait_vm_running,
                VMLookup(provider, vm.slot, vm.vm_id),
                task_queue=queue,
                start_to_close_timeout=timedelta(minutes=10),
                heartbeat_timeout=timedelta(seconds=30),
                retry_policy=BOOT_WAIT_RETRY,
            )
            vm.address = booted.address
            await workflow.execute_activity_method(
                HealthActivities.wait_healthy,
                HealthCheckRequest(
                    vm.slot, vm.address, workflow.now() + timedelta(seconds=self._tune.health_timeout_s)
                ),
                start_to_close_timeout=timedelta(seconds=self._tune.health_timeout_s + 60),
                heartbeat_timeout=timedelta(seconds=30),
                retry_policy=BOOT_WAIT_RETRY,
            )
        except ActivityError as err:
            if not self._deleting:  # a boot cancelled by the pool's delete is no failure of the provider
                await self._create_failed(vm, err)
            return
        if vm.status != "booting":
            return  # deleting started meanwhile
        vm.status, vm.since = "ready", workflow.now()
        if self._counts.failing:
            await self._audit("pool.recovered", f"a VM booted after {self._counts.failing} failed creates")
        self._counts.failing, self._counts.next_create_at = 0, None

    async def _create_failed(self, vm: PoolVMRef, err: ActivityError) -> None:
        c = self._counts
        c.failing += 1
        c.failed += 1
        c.last_error = _message(err)
        now = workflow.now()
        t = self._tune
        c.next_create_at = now + timedelta(seconds=min(t.backoff_first_s * 2 ** (c.failing - 1), t.backoff_max_s))
        workflow.logger.warning("pool %s: create failed (%d in a row): %s", self._key, c.failing, c.last_error)
        if c.failing >= t.pause_after:
            c.paused_until = now + timedelta(seconds=t.pause_s)
            await self._audit(
                "pool.paused",
                f"{c.failing} creates failed in a row; paused for {t.pause_s}s (last: {c.last_error})",
            )
        await self._retire(vm, "its create failed")

    async def _probe(self, vm: PoolVMRef) -> None:
        report = await workflow.execute_activity_method(
            HealthActivities.probe_agent,
            HealthCheckRequest(vm.slot, vm.address, workflow.now() + timedelta(seconds=10)),
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=FLEET_PROBE_RETRY,
        )
        if vm.status == "ready" and not report.healthy:
            await self._retire(vm, f"unhealthy ({report.status}: {report.reason})")

    async def _release(self, vm: PoolVMRef) -> None:
        """A claim's grace is over: a VM still carrying the pool's labels was never adopted and goes; one adopted is
        its agent's and is not found by its slot any more. Either way the pool identity goes."""
        await self._clean(
            PoolVMActivities.delete_pool_vm,
            PoolVMActivities.verify_pool_vm_gone,
            PoolVMLookup(self._key.provider, vm.slot),
            cloud_queue(self._key.provider, workflow.info().task_queue),
        )
        await self._clean(
            PoolSecretsActivities.destroy_pool_identity, PoolSecretsActivities.verify_pool_identity_gone, vm.slot
        )
        self._vms.pop(vm.slot, None)

    async def _retire(self, vm: PoolVMRef, why: str) -> None:
        """Delete the VM and its pool identity, verify both gone, and forget it."""
        vm.status = "deleting"
        workflow.logger.info("pool %s: deleting %s (%s)", self._key, vm.slot, why)
        await self._clean(
            PoolVMActivities.delete_pool_vm,
            PoolVMActivities.verify_pool_vm_gone,
            PoolVMLookup(self._key.provider, vm.slot, vm.vm_id),
            cloud_queue(self._key.provider, workflow.info().task_queue),
        )
        await self._clean(
            PoolSecretsActivities.destroy_pool_identity, PoolSecretsActivities.verify_pool_identity_gone, vm.slot
        )
        self._vms.pop(vm.slot, None)

    async def _clean(
        self, delete: Callable[..., object], verify: Callable[..., object], arg: object, queue: str | None = None
    ) -> None:
        """Delete then verify until verification passes; never gives up (a pool must not leak what it made)."""
        delay = 1.0
        while True:
            try:
                for step, policy in ((delete, CLEANUP_RETRY), (verify, VERIFY_RETRY)):
                    await workflow.execute_activity_method(
                        step,
                        arg,
                        task_queue=queue,
                        start_to_close_timeout=timedelta(minutes=2),
                        retry_policy=policy,
                    )
                return
            except ActivityError as err:
                self._counts.last_error = f"cleanup blocked: {_message(err)}"
                self._show()
                await workflow.sleep(delay)
                delay = min(delay * 2, 300.0)

    async def _drain(self) -> PoolStatus:
        """Delete every VM the pool holds and end. A claimed VM is released at once: one its lifecycle adopted no
        longer carries the pool's labels and stays the agent's; one not yet adopted goes (that lifecycle's adopt then
        fails and its cleanup runs)."""
        self._show()
        for task in list(self._tasks.values()):
            task.cancel()
        await workflow.wait_condition(lambda: not self._tasks)
        while self._vms:
            for vm in list(self._vms.values()):
                if vm.status == "claimed":
                    self._start(vm.slot, self._release(vm))
                else:
                    self._start(vm.slot, self._retire(vm, "pool deleted"))
            self._show()
            await workflow.wait_condition(lambda: not self._tasks)
        await self._audit("pool.deleted", f"every VM of pool {self._key} deleted and verified gone")
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self.status()

    # --- messages -------------------------------------------------------------------------------------------------

    @workflow.update(
        name=POOL_CLAIM_UPDATE,
        description=f"For lifecycles: take one ready VM for an agent. Body: {CLAIM_EXAMPLE}. The same agent asking "
        "again gets the same VM; an empty pool answers with no VM and why.",
    )
    def claim(self, *body: Any) -> PoolClaim:
        request = one_message(body, ClaimRequest, example=CLAIM_EXAMPLE)
        held = next((vm for vm in self._vms.values() if vm.agent_id == request.agent_id), None)
        if held is not None:
            return PoolClaim(held, self._key.pool_id)
        ready = sorted((vm for vm in self._vms.values() if vm.status == "ready"), key=_since)
        if self._deleting or not ready:
            self._counts.empty_claims += 1
            self._wake = True
            return PoolClaim(None, self._key.pool_id, self._why_empty())
        vm = ready[0]
        vm.status, vm.agent_id, vm.since = "claimed", request.agent_id, workflow.now()
        self._counts.claims += 1
        self._wake = True  # a replacement starts booting now
        return PoolClaim(vm, self._key.pool_id)

    @claim.validator
    def _validate_claim(self, *body: Any) -> None:
        try:
            request = one_message(body, ClaimRequest, example=CLAIM_EXAMPLE)
            validate_agent_id(request.agent_id)
        except (MessageRefused, SpecError) as err:
            raise ApplicationError(str(err), type="MessageRefused", non_retryable=True) from None

    @workflow.update(
        name=POOL_RESIZE_UPDATE,
        description=f"Change how many ready VMs the pool keeps. Body: {RESIZE_EXAMPLE}. Also ends a pause.",
    )
    async def resize(self, *body: Any) -> PoolStatus:
        size = one_message(body, PoolSize, example=RESIZE_EXAMPLE)
        before = self._size
        self._size = size
        c = self._counts
        c.paused_until = c.next_create_at = None
        c.failing = 0
        self._wake = True
        await self._audit(
            "pool.resized",
            f"min {before.min}->{size.min}, max {before.max}->{size.max}, max_idle_s {size.max_idle_s}",
            actor="operator",
        )
        return self.status()

    @resize.validator
    def _validate_resize(self, *body: Any) -> None:
        try:
            validate_pool_size(one_message(body, PoolSize, example=RESIZE_EXAMPLE))
        except (MessageRefused, SpecError) as err:
            raise ApplicationError(str(err), type="MessageRefused", non_retryable=True) from None
        if self._deleting:
            raise ApplicationError("the pool is being deleted", type="PoolDeleting", non_retryable=True)

    @workflow.update(
        name=POOL_DELETE_UPDATE,
        description="Delete every VM of the pool and end it. No body. Answers at once; the run ends when all is gone.",
    )
    def delete(self, *body: Any) -> PoolStatus:
        self._deleting = True
        return self.status()

    @delete.validator
    def _validate_delete(self, *body: Any) -> None:
        if body and body != (None,):
            raise ApplicationError("the delete update takes no body", type="MessageRefused", non_retryable=True)

    @workflow.query(name=STATUS_QUERY, description="Desired, ready, booting and claimed VMs, failures and pause.")
    def status(self, *args: Any) -> PoolStatus:
        c = self._counts
        vms = list(self._vms.values())
        return PoolStatus(
            pool_id=self._key.pool_id,
            provider=self._key.provider,
            region=self._key.region,
            size=self._key.size,
            min=self._size.min,
            max=self._size.max,
            max_idle_s=self._size.max_idle_s,
            ready=sum(1 for vm in vms if vm.status == "ready"),
            booting=sum(1 for vm in vms if vm.status == "booting"),
            claimed=sum(1 for vm in vms if vm.status == "claimed"),
            claims=c.claims,
            empty_claims=c.empty_claims,
            failing=c.failing,
            failed=c.failed,
            paused_until=c.paused_until,
            last_error=c.last_error,
            deleting=self._deleting,
            vms=[PoolVMRef(vm.slot, vm.vm_id, vm.address, vm.status, vm.since, vm.agent_id) for vm in vms],
        )

    # --- helpers --------------------------------------------------------------------------------------------------

    def _why_empty(self) -> str:
        c = self._counts
        if self._deleting:
            return f"pool {self._key} is being deleted"
        if c.paused_until and workflow.now() < c.paused_until:
            return f"pool {self._key} is paused until {c.paused_until:%H:%M:%S} UTC after {c.failing} failed creates"
        booting = sum(1 for vm in self._vms.values() if vm.status == "booting")
        return f"pool {self._key} has no ready VM ({booting} booting, min {self._size.min})"

    def _show(self) -> None:
        s = self.status()
        text = (
            f"Warm pool {self._key}: {s.ready} ready, {s.booting} booting, {s.claimed} claimed "
            f"(min {s.min}, max {s.max}); {s.claims} claims served, {s.empty_claims} found it empty."
        )
        if self._deleting:
            text = f"Deleting warm pool {self._key}: {len(self._vms)} VMs left to delete and verify gone."
        elif s.paused_until and workflow.now() < s.paused_until:
            text += (
                f" PAUSED until {s.paused_until:%Y-%m-%d %H:%M:%S} UTC after {s.failing} failed creates in a row "
                f"(last: {s.last_error}). Fix the cause, then run `lobstack pool set` to resume."
            )
        elif s.failing:
            text += f" {s.failing} creates failed in a row, backing off (last: {s.last_error})."
        workflow.set_current_details(text)

    def _carry(self) -> PoolCarry:
        c = self._counts
        return PoolCarry(
            list(self._vms.values()),
            c.claims,
            c.empty_claims,
            c.failing,
            c.failed,
            c.next_create_at,
            c.paused_until,
            c.last_error,
        )

    async def _audit(self, action: str, reason: str, *, actor: str = "lobstack") -> None:
        info = workflow.info()
        self._events += 1
        await workflow.execute_activity_method(
            RegistryActivities.record_transition,
            Transition(
                event_key=f"{info.workflow_id}/{info.run_id}/{self._events}",
                agent_id=self._key.pool_id,
                account_id=POOL_ACCOUNT,
                state=AgentState.RUNNING,
                action=action,
                actor=actor,
                reason=reason[:500],
                provider=self._key.provider,
                region=self._key.region,
                size=self._key.size,
                at=workflow.now(),
                details={"pool": self._key.pool_id},
                audit_only=True,
            ),
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=REGISTRY_RETRY,
        )


def _since(vm: PoolVMRef) -> datetime:
    return vm.since or datetime.min.replace(tzinfo=workflow.now().tzinfo)


def _message(err: BaseException) -> str:
    cause = err.cause if isinstance(err, ActivityError) and err.cause is not None else err
    return str(cause)[:300]


__all__ = ["WarmPoolWorkflow"]
