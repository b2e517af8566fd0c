"""Small pieces every cloud adapter needs, kept in one place so the three adapters stay alike."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import replace

from activities.cloud.base import VM
from activities.cloud.userdata import check_size, render_cloud_init
from activities.errors import ProviderRejected
from contracts.bootstrap import AGENT_SOCKET, AGENT_USER, BRIDGE_PORT, BootstrapConfig
from contracts.regions import locations


def vm_user_data(provider: str, bootstrap: BootstrapConfig) -> str:
    """Cloud-init for a VM, refused before any API call when over the provider's limit (it will not shrink)."""
    # On a VM the bridge serves /health (only) on every interface at the port the health check probes, and the agent
    # API on a Unix socket for the agent's user (cloud-init creates it); there is no address file.
    config = replace(
        bootstrap,
        listen_host="0.0.0.0",  # noqa: S104
        listen_port=BRIDGE_PORT,
        address_file="",
        agent_socket=AGENT_SOCKET,
        agent_user=AGENT_USER,
    )
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


def retry_after_s(
    headers: Mapping[str, str], reset_header: str, cap_s: float, *, refill_headers: tuple[str, str] | None = None
) -> float:
    """Seconds until a rate-limited provider takes calls again, from its reset header (a unix time) or Retry-After.

    At least one second, at most `cap_s`. `refill_headers` names the (limit, remaining) headers of a provider whose
    budget refills gradually (Hetzner, one request a second): its reset header is when the *whole* budget is back, an
    hour away when it is spent, but the next request is allowed one refill step later, (reset - now) / (limit -
    remaining) per request short of one.
    """
    reset = parse_float(headers.get(reset_header))
    if reset is not None:
        wait = reset - time.time()
        if refill_headers is not None:
            limit, remaining = (parse_float(headers.get(name)) for name in refill_headers)
            if limit is not None and remaining is not None and limit > remaining:
                wait = wait / (limit - remaining) * max(1.0 - remaining, 0.0)
        return min(max(wait, 1.0), cap_s)
    retry_after = parse_float(headers.get("Retry-After") or headers.get("retry-after"))
    return min(max(retry_after, 1.0), cap_s) if retry_after is not None else 1.0


def numeric_id(vm_id: str, what: str) -> int:
    """A provider's integer VM id from our string form; anything else is refused, never sent."""
    try:
        return int(vm_id)
    except ValueError:
        raise ProviderRejected(f"{vm_id!r} is not {what}") from None
