"""How long each provider's VMs typically take from create to running: when wait_vm_running looks first.

Every status look is an API call out of the provider's budget, and looks before the VM can be up only say "not yet".
So the first look waits for the typical boot time (counted from the start of the wait, which follows the create), then
the bounded-overshoot schedule (activities/polling.py) takes over: a usual boot costs one look, a slow one is still
seen at most 10 % (or 5 s) late. A value set too high delays seeing the VM by the excess, never more calls.

The defaults are rough public figures for a small Linux VM, not measured here; set `LOBSTACK_VM_BOOT_S_<PROVIDER>`
(seconds, e.g. `LOBSTACK_VM_BOOT_S_HETZNER=12`) from your own boot times. The dev stack sets them to cloudsim's
simulated boot latency. The local provider's processes start at once.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

__all__ = ["DEFAULT_VM_BOOT_S", "boot_env_var", "vm_boot_times"]

DEFAULT_VM_BOOT_S: Mapping[str, float] = {
    "hetzner": 10.0,
    "digitalocean": 30.0,
    "vultr": 45.0,
    "local": 0.0,
}
# A larger value would hold the first look longer than any boot worth waiting for (wait_vm_running's own timeout is
# 10 minutes).
MAX_VM_BOOT_S = 300.0


def boot_env_var(provider: str) -> str:
    return f"LOBSTACK_VM_BOOT_S_{provider.upper()}"


def vm_boot_times(env: Mapping[str, str]) -> dict[str, float]:
    """The defaults with every `LOBSTACK_VM_BOOT_S_<PROVIDER>` applied; a bad value raises ValueError naming it."""
    times = dict(DEFAULT_VM_BOOT_S)
    for provider in DEFAULT_VM_BOOT_S:
        name = boot_env_var(provider)
        raw = env.get(name, "").strip()
        if not raw:
            continue
        try:
            value = float(raw)
        except ValueError:
            raise ValueError(f"{name}: {raw!r} is not a number of seconds") from None
        if not (math.isfinite(value) and 0 <= value <= MAX_VM_BOOT_S):
            raise ValueError(f"{name}: {raw!r} is not allowed; seconds from 0 to {MAX_VM_BOOT_S:g}")
        times[provider] = value
    return times
