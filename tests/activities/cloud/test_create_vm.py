"""CloudActivities.create_vm alone decides look-up, adopt or replace, then create; the adapters only create.

Against cloudsim and the real client libraries (and real processes for the local provider).
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path
from typing import Any

import pytest
from temporalio.testing import ActivityEnvironment

from activities.cloud.activities import CloudActivities
from activities.cloud.base import VM, CloudProvider, vm_name
from activities.cloud.hetzner import HetznerProvider
from activities.cloud.local import LocalProvider
from activities.errors import ProviderUnavailable, VMNameTaken
from contracts.bootstrap import BootstrapConfig
from tests.activities.cloud.conftest import bootstrap, new_agent_id, poll, sim_calls, sim_vms, vm_request


class _Issuer:
    def __init__(self) -> None:
        self.issued = 0

    def issue_bootstrap(self, agent_id: str) -> BootstrapConfig:
        self.issued += 1
        return bootstrap(agent_id)


def _create(adapter: CloudProvider, agent_id: str, issuer: _Issuer | None = None) -> Any:
    acts = CloudActivities(providers={adapter.name: adapter}, bootstrap=issuer or _Issuer())
    return ActivityEnvironment().run(acts.create_vm, vm_request(adapter.name, agent_id))


def test_a_second_create_adopts_the_vm_instead_of_making_another(
    name: str, adapter: CloudProvider, sim: Any, cleanup: list[Any]
) -> None:
    agent_id = new_agent_id()
    cleanup.append((adapter, agent_id))
    issuer = _Issuer()
    first = _create(adapter, agent_id, issuer)
    second = _create(adapter, agent_id, issuer)
    assert second.vm_id == first.vm_id
    assert len(sim_vms(sim, name, agent_id)) == 1
    assert issuer.issued == 1  # an adopted VM gets no second bootstrap credential


def test_a_create_costs_one_look_up_and_the_create(
    name: str, adapter: CloudProvider, sim: Any, cleanup: list[Any]
) -> None:
    agent_id = new_agent_id()
    cleanup.append((adapter, agent_id))
    adapter.catalog()  # read once per worker and TTL, not per create (tests/activities/cloud/test_catalog.py)
    before = sim_calls(sim, name)
    ref = _create(adapter, agent_id)
    assert ref.api_calls == sim_calls(sim, name) - before == 2


@pytest.mark.parametrize("mode", ["504", "close"])
def test_a_dropped_create_answer_is_adopted_by_the_retry(
    name: str, adapter: CloudProvider, sim: Any, cleanup: list[Any], mode: str
) -> None:
    agent_id = new_agent_id()
    cleanup.append((adapter, agent_id))
    sim.set_faults(provider=name, endpoint="create", drop_after_create=1, drop_mode=mode)
    with pytest.raises(ProviderUnavailable) as failure:
        _create(adapter, agent_id)
    assert failure.value.retryable and failure.value.fails_over and not failure.value.created_nothing

    # The VM exists although the answer was lost: the retry's look-up adopts it instead of making a second one.
    [made] = sim_vms(sim, name, agent_id)
    again = _create(adapter, agent_id)
    assert again.vm_id == str(made["id"])
    assert len(sim_vms(sim, name, agent_id)) == 1


def test_hetzner_refuses_a_taken_name_and_the_activity_adopts_the_racing_attempts_server(
    sim: Any, cleanup: list[Any]
) -> None:
    """Two attempts racing past the look-up: Hetzner's unique names refuse the second create, which then adopts."""

    class BlindLookup(HetznerProvider):
        blind = False

        def find(self, agent_id: str) -> VM | None:
            if self.blind:
                self.blind = False
                return None
            return super().find(agent_id)

    adapter = BlindLookup(token=sim.tokens["hetzner"], endpoint=sim.hetzner_url)
    agent_id = new_agent_id()
    cleanup.append((adapter, agent_id))
    first = adapter.create(vm_request("hetzner", agent_id), bootstrap(agent_id))

    # The adapter only creates: a second create of the same agent is refused, and makes nothing.
    with pytest.raises(VMNameTaken) as taken:
        adapter.create(vm_request("hetzner", agent_id), bootstrap(agent_id))
    assert vm_name(agent_id) in str(taken.value) and taken.value.retryable

    adapter.blind = True  # the activity's look-up misses the first server, as if both attempts ran at once
    second = _create(adapter, agent_id)
    assert second.vm_id == first.vm_id
    assert len(sim_vms(sim, "hetzner", agent_id)) == 1


def test_a_stopped_vm_is_replaced(tmp_path: Path) -> None:
    """A dead VM will not become healthy by waiting: the activity deletes it and creates the agent's VM anew."""
    argv = [sys.executable, "-c", "import time; time.sleep(120)"]  # stands in for the bridge; the config path follows
    local = LocalProvider(state_dir=tmp_path / "vms", bridge_argv=argv, stop_timeout_s=5)
    agent_id = new_agent_id()
    try:
        _create(local, agent_id)
        first_pid = local.pid_of(agent_id)
        assert first_pid is not None

        # The adapter only creates: a live VM of the agent refuses a second create.
        with pytest.raises(VMNameTaken):
            local.create(vm_request("local", agent_id), bootstrap(agent_id))
        assert local.pid_of(agent_id) == first_pid

        os.kill(first_pid, signal.SIGKILL)
        poll(lambda: local.find(agent_id), lambda vm: vm is not None and vm.status == "stopped", what="stopped")
        _create(local, agent_id)
        replaced = local.find(agent_id)
        assert replaced is not None and replaced.status != "stopped"
        assert local.pid_of(agent_id) not in (None, first_pid)
    finally:
        for vm in local.list_managed():
            local.delete(vm.vm_id)
