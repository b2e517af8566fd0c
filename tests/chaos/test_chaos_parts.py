"""The chaos run's own parts: when it disrupts, how it reads a status, and how it counts what is left.

The counting is checked against a private OpenBao dev server (the shared one holds other tests' agents) and a real
SQLite registry: an orphan or duplicate of each kind must show in the count, and a clean agent must not."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

import devstack
from activities.secrets import AgentVault, VaultSettings
from chaos.faults import FaultPlan
from chaos.report import count_leftovers, final_line
from chaos.run import phase_of
from contracts.models import AgentState, AgentStatus, Transition
from store import Registry, upgrade_database


def test_disruptions_are_spread_over_the_run() -> None:
    events = FaultPlan(kills=3).disruptions()
    kinds = [e.kind for e in events]
    assert kinds.count("kill_worker") == 3 and kinds.count("restart_openbao") == 1
    fractions = [e.at_fraction for e in events]
    assert fractions == sorted(fractions) and fractions[0] > 0 and fractions[-1] <= 0.8
    # OpenBao goes down between two kills, so the run recovers from each on its own.
    assert kinds.index("restart_openbao") == 1
    assert [e.kind for e in FaultPlan(kills=1).disruptions()] == ["kill_worker", "restart_openbao"]


def _status(**fields: Any) -> AgentStatus:
    base: dict[str, Any] = {
        "agent_id": "a",
        "account_id": "acct",
        "state": AgentState.PROVISIONING,
        "provider": "vultr",
        "region": "eu-central",
    }
    return AgentStatus(**{**base, **fields})


def test_phase_of_reads_the_provisioning_step() -> None:
    assert phase_of(_status(waiting_for="Provisioning agent a: minting its secrets in Vault.")) == "start"
    assert phase_of(_status(waiting_for="Provisioning agent a: creating its VM on vultr/fra.")) == "creating"
    assert phase_of(_status(vm_id="42")) == "booting"
    assert phase_of(_status(vm_id="42", address="http://127.1.0.2:8787")) == "health"
    assert phase_of(_status(state=AgentState.RUNNING, vm_id="42")) == "running"


@pytest.fixture
def vault(tmp_path: Path) -> Iterator[AgentVault]:
    server = devstack.start_openbao(tmp_path)
    vault = AgentVault(VaultSettings(addr=server.addr, token=server.root_token))
    vault.ensure_engines()
    yield vault
    server.stop()


def _vm_created(registry: Registry, agent_id: str, key: str) -> None:
    registry.record(
        Transition(
            event_key=key,
            agent_id=agent_id,
            account_id="acct",
            state=AgentState.PROVISIONING,
            action="vm.created",
            at=datetime.now(UTC),
        )
    )


def test_count_leftovers_sees_each_kind(vault: AgentVault, tmp_path: Path) -> None:
    upgrade_database(f"sqlite:///{tmp_path / 'r.db'}")
    registry = Registry.from_url(f"sqlite:///{tmp_path / 'r.db'}")
    clean = count_leftovers({"vms": [], "created": {}}, vault, registry, ["a1", "a2"])
    assert clean.total == 0
    assert final_line(2, 2, clean) == (
        "chaos: 2 lifecycles, 2 terminal, orphans: VMs 0 firewalls 0 secrets 0 policies 0 roles 0 keys 0 tokens 0, "
        "duplicates 0"
    )

    vault.mint("a1", account_id="acct")  # its secret, policy, roles and key stay behind
    _vm_created(registry, "a2", "wf/run/3")
    _vm_created(registry, "a2", "wf/run2/3")  # a second VM recorded for one agent
    sim_state = {
        "vms": [{"name": "lobstack-a1"}, {"name": "lobstack-stranger"}],
        "firewalls": [{"name": "lobstack-a1", "description": ""}, {"name": "", "description": "lobstack-agent=a2"}],
        "created": {"hetzner": {"lobstack-a1": 1, "lobstack-a2": 2}, "vultr": {"lobstack-a2": 1}},
    }
    left = count_leftovers(sim_state, vault, registry, ["a1", "a2"])
    registry.close()
    r = left.residue
    assert (r.vms, r.firewalls, r.secrets, r.policies, r.roles, r.keys) == (2, 2, 1, 1, 2, 1)  # roles: AppRole, PKI
    assert left.who["firewalls"] == ["a1", "a2"]
    assert (left.duplicate_vms, left.duplicate_audit, left.duplicates) == (2, 1, 3)  # a2: 3 creates, 2 too many
    assert left.who["vms"] == ["a1"] and left.who["duplicate_audit"] == ["a2"]
    assert left.who["duplicate_vms"] == ["a2"]
