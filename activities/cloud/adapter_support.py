"""Small pieces every cloud adapter needs, kept in one place so the three adapters stay alike."""

from __future__ import annotations

from dataclasses import replace

from activities.cloud.base import VM
from activities.cloud.regions import locations
from activities.cloud.userdata import BRIDGE_PORT, check_size, render_cloud_init
from activities.errors import ProviderRejected
from bridge.config import BootstrapConfig


def vm_user_data(provider: str, bootstrap: BootstrapConfig) -> str:
    """Cloud-init for a VM, refused before any API call when over the provider's limit (it will not shrink)."""
    # On a VM the bridge listens on every interface at the port the health check probes; there is no address file.
    config = replace(bootstrap, listen_host="0.0.0.0", listen_port=BRIDGE_PORT, address_file="")  # noqa: S104
    user_data = render_cloud_init(config)
    check_size(provider, user_data)
    return user_data


def first_location(provider: str, region: str) -> str:
    found = locations(provider, region)
    if not found:
        raise ProviderRejected(f"region: {provider} has no location for {region!r}")
    return found[0].code


def pick(vms: list[VM]) -> VM | None:
    """The agent's VM; should a second one ever exist, a live one wins over a dead one, deterministically."""
    rank = {"running": 0, "creating": 1, "stopped": 2, "gone": 3}
    live = [vm for vm in vms if vm.status != "gone"]
    return min(live, key=lambda vm: (rank[vm.status], vm.vm_id), default=None)


def parse_float(value: str | None) -> float | None:
    try:
        return float(value) if value else None
    except ValueError:
        return None


def short(text: str, token: str, limit: int = 160) -> str:
    """A provider message fit for workflow history: one line, bounded, and never the token."""
    text = " ".join(text.split())
    if token:
        text = text.replace(token, "***")
    return text if len(text) <= limit else text[: limit - 1] + "…"
