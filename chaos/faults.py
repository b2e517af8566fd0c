"""What the chaos run does to the clouds, OpenBao and the worker, and when.

Cloud faults live in cloudsim for the whole run: 10 % of every provider's requests answer a 5xx (a different one per
provider), about one create in ten really creates the VM and then loses its answer (a 504, or the connection cut),
and some reads are slow. On top, 429 storms hit one provider after another. The process disruptions (worker SIGKILL
and restart, OpenBao restart) are spread over the run by how many lifecycles have finished.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from cloudsim.testing import RunningSim
from contracts.regions import CloudProviderName

# One 5xx per provider, so each adapter's classification of its provider's server errors is exercised.
ERROR_STATUS = {"hetzner": 503, "digitalocean": 500, "vultr": 502}
# Endpoints answered slowly: (endpoint, milliseconds). Under the adapters' timeouts, over any reasonable patience.
SLOW = {"hetzner": ("list", 700), "digitalocean": ("get", 1500), "vultr": ("get", 1000)}


@dataclass(frozen=True)
class Disruption:
    kind: str  # "kill_worker" or "restart_openbao"
    at_fraction: float  # of lifecycles finished


@dataclass(frozen=True)
class FaultPlan:
    error_rate: float = 0.10
    drop_fraction: float = 0.10
    # A storm: the next N requests to one provider answer 429; one provider after another, every storm_every_s.
    storm_429: int = 8
    storm_every_s: float = 30.0
    kills: int = 3

    def disruptions(self) -> list[Disruption]:
        """Kills spread over the first 80 % of the run, the OpenBao restart between the first two kills."""
        kills = [Disruption("kill_worker", 0.8 * (i + 1) / (self.kills + 1)) for i in range(self.kills)]
        bao = Disruption(
            "restart_openbao", (kills[0].at_fraction + kills[1].at_fraction) / 2 if self.kills > 1 else 0.5
        )
        return sorted([*kills, bao], key=lambda d: d.at_fraction)

    def install(self, sim: RunningSim, lifecycles_per_provider: Mapping[CloudProviderName, int]) -> None:
        """The standing faults: 5xx rate, dropped create answers, slow reads."""
        for i, (provider, count) in enumerate(sorted(lifecycles_per_provider.items())):
            self._background(sim, provider)
            drops = math.ceil(count * self.drop_fraction)
            sim.set_faults(
                provider=provider, endpoint="create", drop_after_create=drops, drop_mode="close" if i % 2 else "504"
            )
            endpoint, ms = SLOW[provider]
            sim.set_faults(provider=provider, endpoint=endpoint, slow_ms=ms)

    def storm(self, sim: RunningSim, provider: str) -> None:
        """The next `storm_429` requests to the provider answer 429; its 5xx rate stays on (same fault key)."""
        self._background(sim, provider, storm_429=self.storm_429)

    def _background(self, sim: RunningSim, provider: str, **extra: object) -> None:
        sim.set_faults(
            provider=provider,
            endpoint="*",
            error_rate=self.error_rate,
            status=ERROR_STATUS[provider],
            retry_after_s=1.0,
            **extra,
        )
