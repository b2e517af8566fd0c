"""What a chaos run left behind, counted from each component's own state, never from what our code says it did.

VMs, firewalls and duplicate creates from cloudsim (`/_sim/state`: live VMs and firewalls, and every create per VM
name); secrets, policies,
AppRole roles, Transit keys and live tokens from OpenBao's own listings; duplicate `vm.created` records from the
registry's audit trail.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from typing import Any

from activities.cloud.base import vm_name
from activities.secrets import AgentVault
from activities.secrets.pool_vault import PoolVault
from contracts.firewall import firewall_description
from contracts.models import Residue
from store import Registry


@dataclass
class Leftovers:
    # VMs, firewalls, secrets, policies, roles, keys and tokens left, across every agent of the run.
    residue: Residue = field(default_factory=Residue)
    # A second VM created for one agent (cloudsim's create count per name), or a second `vm.created` audit record.
    duplicate_vms: int = 0
    duplicate_audit: int = 0
    # A warm pool VM claimed by two agents (their `vm.claimed` audit records name the same VM).
    claimed_twice: int = 0
    # Which agents, for the table: kind -> agent ids.
    who: dict[str, list[str]] = field(default_factory=dict)

    @property
    def duplicates(self) -> int:
        return self.duplicate_vms + self.duplicate_audit + self.claimed_twice

    @property
    def total(self) -> int:
        return self.residue.total + self.duplicates


def count_leftovers(
    sim_state: dict[str, Any],
    vault: AgentVault,
    registry: Registry,
    agent_ids: Collection[str],
    pools: PoolVault | None = None,
) -> Leftovers:
    """`pools`: also count warm pools' identities left in OpenBao (their VMs are strangers to the agents' names)."""
    names = {vm_name(a): a for a in agent_ids}
    found = Leftovers()
    live = [vm for vm in sim_state["vms"] if vm["name"] in names]
    found.residue.vms = len(live)
    found.who["vms"] = sorted(names[vm["name"]] for vm in live)
    # Every VM in this simulator is ours: one the run did not ask for is an orphan too.
    strangers = [vm for vm in sim_state["vms"] if vm["name"] not in names]
    found.residue.vms += len(strangers)

    # Firewalls: named like the VM (Hetzner, DigitalOcean) or described `lobstack-agent=<id>` (Vultr). Every firewall
    # in this simulator is ours too, so one the run did not ask for counts as well.
    firewall_owners = {**names, **{firewall_description(a): a for a in agent_ids}}
    firewalls = sim_state.get("firewalls", [])
    found.residue.firewalls = len(firewalls)
    found.who["firewalls"] = sorted(
        firewall_owners.get(f.get("name", ""), firewall_owners.get(f.get("description", ""), "?")) for f in firewalls
    )

    created: Counter[str] = Counter()
    for per_name in sim_state.get("created", {}).values():
        for name, count in per_name.items():
            created[name] += count
    extra = {name: count - 1 for name, count in created.items() if count > 1}
    found.duplicate_vms = sum(extra.values())
    found.who["duplicate_vms"] = sorted(names.get(n, n) for n in extra)

    inventory = vault.inventory()
    for kind in ("secrets", "policies", "roles", "keys", "tokens"):
        owners: dict[str, int] = getattr(inventory, kind)
        setattr(found.residue, kind, sum(owners.values()))
        found.who[kind] = sorted(owners)

    if pools is not None:
        slots = pools.list_pool_slots()
        for slot in slots:
            left = pools.pool_residue(slot)
            for kind in ("secrets", "policies", "roles", "tokens"):
                setattr(found.residue, kind, getattr(found.residue, kind) + getattr(left, kind))
        found.who["pool identities"] = slots

    events = _events(registry, agent_ids)
    claims = Counter(
        (e.details.get("provider", ""), e.details.get("vm_id", "")) for e in events if e.action == "vm.claimed"
    )
    found.claimed_twice = sum(c - 1 for c in claims.values() if c > 1)
    found.who["claimed_twice"] = sorted(f"{p}/{v}" for (p, v), c in claims.items() if c > 1)

    vm_created = Counter(e.agent_id for e in events if e.action == "vm.created")
    dup_audit = {a: c - 1 for a, c in vm_created.items() if c > 1}
    found.duplicate_audit = sum(dup_audit.values())
    found.who["duplicate_audit"] = sorted(dup_audit)
    return found


def _events(registry: Registry, agent_ids: Iterable[str]) -> list[Any]:
    wanted = set(agent_ids)
    return [e for e in registry.events() if e.agent_id in wanted]


def table(rows: Iterable[tuple[str, object]], title: str) -> str:
    rows = list(rows)
    width = max([len(title), *(len(k) for k, _ in rows)]) + 2
    lines = [f"{title:<{width}}count", *(f"{k:<{width}}{v}" for k, v in rows)]
    return "\n".join(lines)


def final_line(n: int, terminal: int, left: Leftovers) -> str:
    r = left.residue
    return (
        f"chaos: {n} lifecycles, {terminal} terminal, orphans: VMs {r.vms} firewalls {r.firewalls} secrets {r.secrets} "
        f"policies {r.policies} roles {r.roles} keys {r.keys} tokens {r.tokens}, duplicates {left.duplicates}"
    )
