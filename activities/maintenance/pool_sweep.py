"""The orphan sweep's pool half: pool VMs and pool identities that no running WarmPool holds are removed.

A pool writes a VM into its books before it mints the VM's identity or creates it, and takes it out only after both are
verified gone, so the rule is the sweep's usual one: list the resources FIRST, then the pools' books. Whatever the
listing saw and no book holds belongs to nobody: a pool that was terminated, or a claim whose lifecycle never adopted
the VM and whose pool is gone. A claimed VM that its lifecycle adopted carries the agent's labels, not the pool's, and
is the agent sweep's concern. Books are read with the pool's `status` query: from the visibility listing, and directly
by the pool id every pool VM is labelled with (visibility can lag a pool that just started).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from datetime import timedelta

from temporalio import activity
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowQueryRejectedError
from temporalio.service import RPCError, RPCStatusCode

from activities.cloud.base import VM, CloudProvider
from activities.registry import _translate_errors as registry_errors
from activities.secrets.pool_vault import PoolVault
from contracts.maintenance_models import SWEEP_ACTOR, SweepCounts, SweepInput
from contracts.models import AgentState, Transition
from contracts.pool import POOL_ACCOUNT, POOL_PROVIDERS, POOL_WORKFLOW_PREFIX, PoolStatus, is_slot
from contracts.workflow_names import STATUS_QUERY, WARM_POOL
from store import Registry

__all__ = ["PoolSweepActivities"]

_RUNNING_POOLS = f"WorkflowType='{WARM_POOL}' AND ExecutionStatus='Running'"
# A pool's books are one query away; a pool with no worker polling never answers, so do not wait for it long.
QUERY_TIMEOUT = timedelta(seconds=10)


class PoolSweepActivities:
    def __init__(
        self, *, pools: PoolVault, registry: Registry, providers: Mapping[str, CloudProvider], temporal: Client
    ) -> None:
        self.pools = pools
        self.registry = registry
        self.providers = {name: p for name, p in providers.items() if name in POOL_PROVIDERS}
        self.temporal = temporal

    @activity.defn
    async def sweep_pools(self, request: SweepInput) -> SweepCounts:
        vms, slots = await asyncio.to_thread(self._resources)
        # Only now the books: see the module docstring.
        held, unread = await self._held({vm.pool_id for vm in vms if vm.pool_id})
        counts = SweepCounts()
        # A pool whose books cannot be read now (no worker answers its query) may hold anything: its VMs stay, and
        # so does every identity, since an identity does not say its pool. The next sweep tries again.
        orphan_vms = [vm for vm in vms if vm.slot not in held and vm.pool_id not in unread]
        orphan_slots = [] if unread else sorted(s for s in slots if s not in held)
        for vm in orphan_vms:
            removed = request.dry_run or await asyncio.to_thread(self.providers[vm.provider].delete, vm.vm_id)
            counts.vms += int(removed)
        for slot in orphan_slots:
            if request.dry_run:
                found = await asyncio.to_thread(self.pools.pool_residue, slot)
            else:
                found = await asyncio.to_thread(self.pools.destroy_pool_identity, slot)
            counts.secrets += found.secrets
            counts.policies += found.policies
            counts.roles += found.roles
            counts.tokens += found.tokens
        counts.agent_ids = sorted({vm.slot for vm in orphan_vms} | set(orphan_slots))
        if counts.agent_ids and not request.dry_run:
            await asyncio.to_thread(self._audit, activity.info().workflow_run_id or "", counts)
        activity.logger.info(
            "pool sweep: %d pool VMs, %d identities; %d slots orphaned; books unread: %s",
            len(vms),
            len(slots),
            len(counts.agent_ids),
            sorted(unread) or "none",
        )
        return counts

    def _resources(self) -> tuple[list[VM], list[str]]:
        vms = [vm for provider in self.providers.values() for vm in provider.list_pool_vms() if is_slot(vm.slot)]
        return vms, self.pools.list_pool_slots()

    async def _held(self, labelled_pools: set[str]) -> tuple[set[str], set[str]]:
        """Every slot in the books of a running pool (the listed ones and those the VMs name), and the pool ids whose
        books could not be read."""
        ids = {POOL_WORKFLOW_PREFIX + pool_id for pool_id in labelled_pools}
        async for execution in self.temporal.list_workflows(_RUNNING_POOLS):
            ids.add(execution.id)
        held: set[str] = set()
        unread: set[str] = set()
        for pool in sorted(ids):
            handle = self.temporal.get_workflow_handle(pool)
            try:
                # A closed pool still answers queries (a worker replays it): only a running one holds anything.
                described = await handle.describe(rpc_timeout=QUERY_TIMEOUT)
                if described.status != WorkflowExecutionStatus.RUNNING:
                    continue
                status: PoolStatus = await handle.query(STATUS_QUERY, result_type=PoolStatus, rpc_timeout=QUERY_TIMEOUT)
            except RPCError as err:
                if err.status == RPCStatusCode.NOT_FOUND:
                    continue  # no such pool: it holds nothing
                unread.add(pool.removeprefix(POOL_WORKFLOW_PREFIX))
                continue
            except WorkflowQueryRejectedError:
                unread.add(pool.removeprefix(POOL_WORKFLOW_PREFIX))
                continue
            held.update(vm.slot for vm in status.vms)
        return held, unread

    def _audit(self, run_id: str, counts: SweepCounts) -> None:
        with registry_errors("record_transition"):
            self.registry.record(
                Transition(
                    event_key=f"orphan-sweep:{run_id}:pools",
                    agent_id="warm-pools",
                    account_id=POOL_ACCOUNT,
                    state=AgentState.DESTROYED,
                    action="pool.orphans_swept",
                    actor=SWEEP_ACTOR,
                    reason="no running warm pool held these pool VMs or identities",
                    details={
                        "slots": ",".join(counts.agent_ids)[:900],
                        "vms": str(counts.vms),
                        "roles": str(counts.roles),
                        "policies": str(counts.policies),
                        "tokens": str(counts.tokens),
                    },
                    audit_only=True,
                )
            )
