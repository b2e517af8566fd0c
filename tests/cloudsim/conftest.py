"""One real cloudsim subprocess per test module; each test starts from no VMs, no faults and the default limits."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import TypeVar

import pytest

from cloudsim.ratelimit import DEFAULT_LIMITS
from cloudsim.testing import RunningSim, start_cloudsim

T = TypeVar("T")

# python-digitalocean's Droplet.create posts `vpc_uuid: null` unless given one, and the API's vpc_uuid is not nullable
# (the adapter drops null fields instead).
VPC_UUID = "760e09ef-dc84-11e8-981e-3cfdfeaae000"


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSim]:
    running = start_cloudsim(tmp_path_factory.mktemp("cloudsim"), boot_latency_s=0.2, extra_args=["--seed", "7"])
    yield running
    running.stop()


@pytest.fixture(autouse=True)
def fresh(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    if "sim" in request.fixturenames:
        running: RunningSim = request.getfixturevalue("sim")
        running.clear_faults()
        running.configure(boot_latency_s=0.2, rate_limits=DEFAULT_LIMITS)
        running.reset()


def wait_for(probe: Callable[[], T | None], *, timeout_s: float = 15.0, interval_s: float = 0.05, what: str = "") -> T:
    """Poll `probe` until it returns something truthy; fail with `what` at the deadline."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout_s}s waiting for {what or probe}")
        time.sleep(interval_s)


def sim_vms(sim: RunningSim, provider: str) -> list[dict[str, object]]:
    return [vm for vm in sim.state()["vms"] if vm["provider"] == provider]
