"""CloudActivities.wait_vm_running against cloudsim: one failed status poll is not a failed boot.

A provider answering 5xx or 429 now and then (10 % of requests in `make chaos`) must not end the attempt of a VM that
is booting fine; only a run of failed polls does, and then Temporal retries the attempt.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from temporalio.testing import ActivityEnvironment

from activities.cloud.activities import MAX_POLL_FAILURES, CloudActivities
from activities.cloud.base import CloudProvider
from activities.errors import ProviderUnavailable
from contracts.models import VMLookup
from contracts.regions import CloudProviderName
from tests.activities.cloud.conftest import bootstrap, new_agent_id, vm_request


class _NoBootstrap:
    def issue_bootstrap(self, agent_id: str) -> Any:
        raise AssertionError("wait_vm_running issues no credential")


def _gets(sim: Any, provider: str) -> int:
    return int(sim.state()["calls"].get(provider, {}).get("get", 0))


def _storm_429s(sim: Any, provider: str) -> int:
    # The simulator's counters run for the whole session: tests compare before and after.
    return int(sim.state()["injected"].get(provider, {}).get("storm_429", 0))


async def test_failed_polls_are_looked_past(
    name: CloudProviderName, adapter: CloudProvider, sim: Any, cleanup: list[Any]
) -> None:
    agent_id = new_agent_id()
    cleanup.append((adapter, agent_id))
    vm = adapter.create(vm_request(name, agent_id), bootstrap(agent_id))
    sim.set_faults(provider=name, endpoint="get", storm_429=2, retry_after_s=1)
    before, storms_before = _gets(sim, name), _storm_429s(sim, name)

    acts = CloudActivities(providers={name: adapter}, bootstrap=_NoBootstrap())
    ref = await ActivityEnvironment().run(acts.wait_vm_running, VMLookup(name, agent_id, vm.vm_id))

    assert ref.vm_id == vm.vm_id and ref.address
    assert _storm_429s(sim, name) - storms_before == 2
    assert _gets(sim, name) - before >= 3  # both refused looks, then at least one that saw it running


async def test_a_run_of_failed_polls_ends_the_attempt(
    name: CloudProviderName, adapter: CloudProvider, sim: Any, cleanup: list[Any]
) -> None:
    agent_id = new_agent_id()
    cleanup.append((adapter, agent_id))
    vm = adapter.create(vm_request(name, agent_id), bootstrap(agent_id))
    sim.set_faults(provider=name, endpoint="get", error_rate=1.0)
    before = _gets(sim, name)

    acts = CloudActivities(providers={name: adapter}, bootstrap=_NoBootstrap())
    with pytest.raises(ProviderUnavailable):
        await ActivityEnvironment().run(acts.wait_vm_running, VMLookup(name, agent_id, vm.vm_id))
    assert _gets(sim, name) - before == MAX_POLL_FAILURES


async def test_a_typical_boot_costs_one_status_look(
    name: CloudProviderName, adapter: CloudProvider, sim: Any, cleanup: list[Any]
) -> None:
    agent_id = new_agent_id()
    cleanup.append((adapter, agent_id))
    vm = adapter.create(vm_request(name, agent_id), bootstrap(agent_id))
    before = _gets(sim, name)

    # The simulator boots in 0.2 s; a typical boot time above that makes the first look the only one.
    acts = CloudActivities(providers={name: adapter}, bootstrap=_NoBootstrap(), vm_boot_s={name: 1.0})
    env, beats = _recording()
    ref = await env.run(acts.wait_vm_running, VMLookup(name, agent_id, vm.vm_id))

    assert ref.vm_id == vm.vm_id and ref.address
    assert ref.api_calls == _gets(sim, name) - before == 1
    assert any("typical boot time" in beat for beat in beats)


async def test_a_retried_wait_looks_at_once(
    name: CloudProviderName, adapter: CloudProvider, sim: Any, cleanup: list[Any]
) -> None:
    agent_id = new_agent_id()
    cleanup.append((adapter, agent_id))
    vm = adapter.create(vm_request(name, agent_id), bootstrap(agent_id))

    # The VM is older than the typical boot by the time an attempt is retried: no wait before the first look.
    acts = CloudActivities(providers={name: adapter}, bootstrap=_NoBootstrap(), vm_boot_s={name: 30.0})
    env, beats = _recording(attempt=2)
    ref = await env.run(acts.wait_vm_running, VMLookup(name, agent_id, vm.vm_id))

    assert ref.vm_id == vm.vm_id and ref.address
    assert not any("typical boot time" in beat for beat in beats)


def _recording(attempt: int = 1) -> tuple[ActivityEnvironment, list[str]]:
    env = ActivityEnvironment()
    env.info = dataclasses.replace(env.info, attempt=attempt)
    beats: list[str] = []
    env.on_heartbeat = lambda *details: beats.extend(str(d) for d in details)
    return env, beats
