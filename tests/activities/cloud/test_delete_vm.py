"""CloudActivities.delete_vm and verify_vm_gone: delete by id, one look-up by label proving nothing is left.

Against cloudsim and the real client libraries. The look-up by label also finds a VM the workflow never heard of (one a
create whose answer was lost made): verification fails, and the next delete, its id being gone, deletes that one.
"""

from __future__ import annotations

from typing import Any

import pytest
from temporalio.testing import ActivityEnvironment

from activities.cloud.activities import CloudActivities
from activities.cloud.base import CloudProvider
from activities.errors import VMLeftBehind
from contracts.models import Residue, VMLookup
from contracts.regions import CloudProviderName
from tests.activities.cloud.conftest import bootstrap, new_agent_id, sim_calls, sim_vms, vm_request


class _NoBootstrap:
    def issue_bootstrap(self, agent_id: str) -> Any:
        raise AssertionError("deleting issues no credential")


def _acts(name: str, adapter: CloudProvider) -> CloudActivities:
    return CloudActivities(providers={name: adapter}, bootstrap=_NoBootstrap())


def test_destroy_costs_a_delete_by_id_and_one_proof(
    name: CloudProviderName, adapter: CloudProvider, sim: Any, cleanup: list[Any]
) -> None:
    agent_id = new_agent_id()
    cleanup.append((adapter, agent_id))
    vm = adapter.create(vm_request(name, agent_id), bootstrap(agent_id))
    acts, env, lookup = _acts(name, adapter), ActivityEnvironment(), VMLookup(name, agent_id, vm.vm_id)
    before = sim_calls(sim, name)

    deleted = env.run(acts.delete_vm, lookup)
    proof = env.run(acts.verify_vm_gone, lookup)

    assert deleted.vm_ids == [vm.vm_id] and deleted.api_calls == 1
    assert proof == Residue(api_calls=1) and proof.total == 0
    assert sim_calls(sim, name) - before == 2
    assert sim_vms(sim, name, agent_id) == []


def test_a_vm_the_proof_finds_is_deleted_by_the_next_round(
    name: CloudProviderName, adapter: CloudProvider, sim: Any, cleanup: list[Any]
) -> None:
    agent_id = new_agent_id()
    cleanup.append((adapter, agent_id))
    known = adapter.create(vm_request(name, agent_id), bootstrap(agent_id))
    acts, env, lookup = _acts(name, adapter), ActivityEnvironment(), VMLookup(name, agent_id, known.vm_id)
    assert env.run(acts.delete_vm, lookup).vm_ids == [known.vm_id]
    # A VM the workflow does not know of: what a create whose answer was lost leaves.
    unknown = adapter.create(vm_request(name, agent_id), bootstrap(agent_id))

    with pytest.raises(VMLeftBehind, match=unknown.vm_id):
        env.run(acts.verify_vm_gone, lookup)
    # Cleanup's next round: the known id is gone already, so the look-up by label finds the other one.
    assert env.run(acts.delete_vm, lookup).vm_ids == [unknown.vm_id]
    assert env.run(acts.verify_vm_gone, lookup).total == 0
    assert sim_vms(sim, name, agent_id) == []


def test_without_an_id_delete_finds_the_vm_by_label(
    name: CloudProviderName, adapter: CloudProvider, sim: Any, cleanup: list[Any]
) -> None:
    agent_id = new_agent_id()
    cleanup.append((adapter, agent_id))
    vm = adapter.create(vm_request(name, agent_id), bootstrap(agent_id))
    acts, env, lookup = _acts(name, adapter), ActivityEnvironment(), VMLookup(name, agent_id)

    deleted = env.run(acts.delete_vm, lookup)

    assert deleted.vm_ids == [vm.vm_id] and deleted.api_calls == 2  # the look-up, then the delete
    assert env.run(acts.verify_vm_gone, lookup).total == 0
    assert sim_vms(sim, name, agent_id) == []
