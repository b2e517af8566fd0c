"""A firewall per agent on each cloud provider: what every adapter offers, and the activities that use it.

Each agent gets its own provider firewall (Hetzner Firewall, DigitalOcean Cloud Firewall, Vultr firewall group),
made before its VM and attached when the VM is created; the rule set is `contracts.firewall.FirewallRules`. Finding it
again needs no stored id: Hetzner carries the agent label, DigitalOcean the agent's name and tag (its firewalls have
no labels), Vultr the description `lobstack-agent=<id>` (groups have nothing else). So `ensure_firewall` is
idempotent (look up, then create) and a lost answer never makes a second one that nobody deletes.

The `local` provider has no firewall: the activities are registered only on the cloud providers' queues.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from temporalio import activity

from activities.cloud.calls import counting
from activities.errors import FirewallLeftBehind, ProviderRejected
from contracts.firewall import FirewallRules
from contracts.models import FirewallRef, FirewallRequest, FirewallsDeleted, Residue
from contracts.regions import ProviderName


@dataclass(frozen=True)
class ProviderFirewall:
    provider: ProviderName
    firewall_id: str
    # From the firewall's label, tag or description; "" when it carries none we set.
    agent_id: str


@runtime_checkable
class FirewallProvider(Protocol):
    name: ProviderName

    def ensure_firewall(self, agent_id: str, account_id: str, rules: FirewallRules) -> ProviderFirewall:
        """The agent's firewall, created with `rules` unless one exists already (then it is returned as it is)."""
        ...

    def find_firewalls(self, agent_id: str) -> list[ProviderFirewall]:
        """Every firewall of the agent (normally one; a create race may have made two)."""
        ...

    def delete_firewall(self, firewall_id: str) -> bool:
        """Delete it; False when it was already gone. Raises `FirewallInUse` while a VM still holds it."""
        ...

    def list_managed_firewalls(self) -> list[ProviderFirewall]:
        """Every firewall Lobstack made, for the orphan sweep."""
        ...


class FirewallActivities:
    """Ensure, delete and verify agents' firewalls; providers without firewalls are refused by name."""

    def __init__(self, *, providers: Mapping[str, object], rules: FirewallRules) -> None:
        self.providers = {name: p for name, p in providers.items() if isinstance(p, FirewallProvider)}
        self.rules = rules

    def _provider(self, name: str) -> FirewallProvider:
        try:
            return self.providers[name]
        except KeyError:
            raise ProviderRejected(f"provider {name!r} has no firewalls on this worker") from None

    @activity.defn
    def ensure_firewall(self, request: FirewallRequest) -> FirewallRef:
        provider = self._provider(request.provider)
        with counting() as calls:
            firewall = provider.ensure_firewall(request.agent_id, request.account_id, self.rules)
        activity.logger.info("firewall %s for agent %s on %s", firewall.firewall_id, request.agent_id, provider.name)
        return FirewallRef(provider.name, firewall.firewall_id, calls.total)

    @activity.defn
    def delete_firewall(self, request: FirewallRequest) -> FirewallsDeleted:
        """Delete every firewall of the agent on the provider; gone already counts as success."""
        provider = self._provider(request.provider)
        deleted: list[str] = []
        with counting() as calls:
            for firewall in provider.find_firewalls(request.agent_id):
                if provider.delete_firewall(firewall.firewall_id):
                    deleted.append(firewall.firewall_id)
        if deleted:
            activity.logger.info("deleted firewall(s) %s of agent %s on %s", deleted, request.agent_id, provider.name)
        return FirewallsDeleted(deleted, calls.total)

    @activity.defn
    def verify_firewall_gone(self, request: FirewallRequest) -> Residue:
        left = self._provider(request.provider).find_firewalls(request.agent_id)
        if left:
            raise FirewallLeftBehind(
                f"{len(left)} firewall(s) of agent {request.agent_id} still exist on {request.provider}: "
                f"{left[0].firewall_id}"
            )
        return Residue()


__all__ = ["FirewallActivities", "FirewallProvider", "ProviderFirewall"]
