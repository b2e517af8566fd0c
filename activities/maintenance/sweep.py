"""OrphanSweep activities: find what no running lifecycle owns, and remove it.

Order matters: resources are listed FIRST, then the running lifecycles. A lifecycle that starts after the listing owns
nothing the listing saw; one that starts before it is in the second list. Visibility can lag, so every candidate is
checked once more with DescribeWorkflowExecution (strongly consistent) right before anything is deleted.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

from temporalio import activity
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from activities.approvals import cancel_approvals, open_approvals
from activities.cloud.base import CloudProvider
from activities.cloud.firewalls import FirewallProvider
from activities.errors import FirewallInUse
from activities.registry import _translate_errors as registry_errors
from activities.secrets.agent_vault import AgentVault
from contracts.identifiers import agent_of, is_agent_id, workflow_id
from contracts.maintenance_models import (
    SWEEP_ACTOR,
    Orphan,
    OrphanFirewall,
    OrphanReport,
    OrphanVM,
    RemoveOrphans,
    SweepCounts,
    SweepInput,
)
from contracts.models import AgentState, Residue, Transition
from contracts.workflow_names import AGENT_LIFECYCLE
from store import Registry

LIVE_QUERY = f"WorkflowType='{AGENT_LIFECYCLE}' AND ExecutionStatus='Running'"
# Audit rows need an account; Vault state of an agent the registry never saw has none.
UNREGISTERED_ACCOUNT = "unregistered"


class SweepActivities:
    def __init__(
        self,
        *,
        vault: AgentVault,
        registry: Registry,
        providers: Mapping[str, CloudProvider],
        temporal: Client,
    ) -> None:
        self.vault = vault
        self.registry = registry
        self.providers = dict(providers)
        self.temporal = temporal

    # --- find ------------------------------------------------------------------------------------------------------

    @activity.defn
    async def find_orphans(self, request: SweepInput) -> OrphanReport:
        vms, in_vault, data = await asyncio.to_thread(self._resources)
        firewalls = await asyncio.to_thread(self._firewalls)
        approvals = await open_approvals(self.temporal)
        # Only now the lifecycles: see the module docstring.
        live = await self._live_agents()
        named = set(vms) | in_vault | set(data) | set(approvals) | set(firewalls)
        orphan_ids = sorted(named - live)
        report = OrphanReport(
            agents_seen=len(named), live=len(named & live), truncated=len(orphan_ids) > request.max_agents
        )
        for agent_id in orphan_ids[: request.max_agents]:
            report.orphans.append(
                Orphan(
                    agent_id,
                    vms=vms.get(agent_id, []),
                    in_vault=agent_id in in_vault,
                    data_items=data.get(agent_id, 0),
                    approvals=approvals.get(agent_id, []),
                    firewalls=firewalls.get(agent_id, []),
                )
            )
        activity.logger.info(
            "sweep: %d agent(s) named by resources, %d live, %d orphaned", len(named), report.live, len(orphan_ids)
        )
        return report

    def _resources(self) -> tuple[dict[str, list[OrphanVM]], set[str], dict[str, int]]:
        vms: dict[str, list[OrphanVM]] = {}
        for name, provider in self.providers.items():
            # A provider that cannot list now fails the sweep (retried): an unseen VM is not a swept VM, but the
            # Vault state of its agent would be, cutting a possibly healthy agent off its secrets.
            for vm in provider.list_managed():
                # A label that is not a valid agent id was not set by us: never ours to delete.
                if is_agent_id(vm.agent_id):
                    vms.setdefault(vm.agent_id, []).append(OrphanVM(name, vm.vm_id))
        in_vault = self.vault.inventory().agent_ids()
        with registry_errors("agent_data_counts"):
            data = self.registry.agent_data_counts()
        return vms, in_vault, data

    def _firewalls(self) -> dict[str, list[OrphanFirewall]]:
        found: dict[str, list[OrphanFirewall]] = {}
        for name, provider in self.providers.items():
            if not isinstance(provider, FirewallProvider):
                continue  # the local provider has none
            for firewall in provider.list_managed_firewalls():
                # One whose label, tag or description is not a valid agent id was not made by us.
                if is_agent_id(firewall.agent_id):
                    found.setdefault(firewall.agent_id, []).append(OrphanFirewall(name, firewall.firewall_id))
        return found

    async def _live_agents(self) -> set[str]:
        live: set[str] = set()
        async for execution in self.temporal.list_workflows(LIVE_QUERY):
            agent_id = agent_of(execution.id)
            if agent_id is not None:
                live.add(agent_id)
        return live

    # --- remove ----------------------------------------------------------------------------------------------------

    @activity.defn
    async def remove_orphans(self, request: RemoveOrphans) -> SweepCounts:
        counts = SweepCounts()
        for done, orphan in enumerate(request.orphans):
            activity.heartbeat(done)
            if await self._running(orphan.agent_id):
                counts.skipped_live += 1
                continue
            closed = len(orphan.approvals)
            if orphan.approvals and not request.dry_run:
                reason = f"agent {orphan.agent_id} has no running lifecycle (orphan sweep {request.run_id})"
                closed = await cancel_approvals(self.temporal, orphan.approvals, reason)
            counts.add(await asyncio.to_thread(self._remove_one, orphan, request, closed))
        return counts

    async def _running(self, agent_id: str) -> bool:
        try:
            described = await self.temporal.get_workflow_handle(workflow_id(agent_id)).describe()
        except RPCError as err:
            if err.status == RPCStatusCode.NOT_FOUND:
                return False
            raise
        return described.status == WorkflowExecutionStatus.RUNNING

    def _remove_one(self, orphan: Orphan, request: RemoveOrphans, approvals_closed: int) -> SweepCounts:
        """VM first (the agent stops), then Vault (the role, its tokens, policy, key, KV), then the data rows; its
        open approvals were closed just before (`approvals_closed`)."""
        agent_id = orphan.agent_id
        counts = SweepCounts(agents=1, agent_ids=[agent_id], approvals=approvals_closed)
        for vm in orphan.vms:
            provider = self.providers.get(vm.provider)
            if provider is None:
                continue
            counts.vms += 1 if request.dry_run else int(provider.delete(vm.vm_id))
        for firewall in orphan.firewalls:
            holder = self.providers.get(firewall.provider)
            if not isinstance(holder, FirewallProvider):
                continue
            if request.dry_run:
                counts.firewalls += 1
                continue
            try:
                counts.firewalls += int(holder.delete_firewall(firewall.firewall_id))
            except FirewallInUse:
                # Its VM, deleted just above, is still going: the next sweep deletes the firewall.
                activity.logger.info("sweep: firewall %s of agent %s still in use", firewall.firewall_id, agent_id)
        if orphan.in_vault:
            found = self.vault.residue(agent_id) if request.dry_run else self.vault.destroy(agent_id)
            _add_residue(counts, found)
        if orphan.data_items:
            if request.dry_run:
                counts.data = orphan.data_items
            else:
                with registry_errors("delete_agent_data"):
                    counts.data = self.registry.delete_agent_data(agent_id)
        if request.dry_run:
            activity.logger.info("sweep (dry run) would remove agent %s: %s", agent_id, _describe(counts))
        else:
            self._audit(request.run_id, counts)
            activity.logger.info("swept orphan agent %s: %s", agent_id, _describe(counts))
        return counts

    def _audit(self, run_id: str, counts: SweepCounts) -> None:
        agent_id = counts.agent_ids[0]
        with registry_errors("record_transition"):
            agent = self.registry.get(agent_id)
            # A row that still says running describes an agent that is gone now: say so (the fleet monitor then
            # stops probing it). A finished row keeps its state; an unknown agent gets an event only.
            finished = agent is not None and agent.state.terminal
            self.registry.record(
                Transition(
                    event_key=f"orphan-sweep:{run_id}:{agent_id}",
                    agent_id=agent_id,
                    account_id=agent.account_id if agent is not None else UNREGISTERED_ACCOUNT,
                    state=agent.state if finished and agent is not None else AgentState.DESTROYED,
                    action="orphan.swept",
                    actor=SWEEP_ACTOR,
                    reason="no running lifecycle owned these resources",
                    details={
                        "vms": str(counts.vms),
                        "firewalls": str(counts.firewalls),
                        "secrets": str(counts.secrets),
                        "policies": str(counts.policies),
                        "roles": str(counts.roles),
                        "keys": str(counts.keys),
                        "tokens": str(counts.tokens),
                        "data": str(counts.data),
                        "approvals": str(counts.approvals),
                    },
                    audit_only=agent is None or finished,
                )
            )


def _add_residue(counts: SweepCounts, found: Residue) -> None:
    counts.secrets += found.secrets
    counts.policies += found.policies
    counts.roles += found.roles
    counts.keys += found.keys
    counts.tokens += found.tokens


def _describe(c: SweepCounts) -> str:
    return (
        f"vms={c.vms} firewalls={c.firewalls} secrets={c.secrets} policies={c.policies} roles={c.roles} keys={c.keys} "
        f"tokens={c.tokens} data={c.data} approvals={c.approvals}"
    )


__all__ = ["LIVE_QUERY", "SweepActivities"]
