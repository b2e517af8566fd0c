"""cloudsim: one local process that speaks the Hetzner Cloud, DigitalOcean and Vultr HTTP APIs.

Development and tests only. The real client libraries (hcloud, python-digitalocean, httpx for Vultr v2) run against it
unchanged; each simulated VM gets its own loopback IPv4 and, when its user-data carries a lobstack bootstrap config,
runs the real agent bridge on that address. Start it with `python -m cloudsim` or `cloudsim.testing.start_cloudsim`.
"""

from __future__ import annotations

PROVIDERS = ("hetzner", "digitalocean", "vultr")
ENDPOINT_KEYS = ("create", "get", "list", "update", "delete", "action", "account", "catalog", "firewall")
DEFAULT_TOKENS: dict[str, str] = {p: f"sim-{p}-token" for p in PROVIDERS}

__all__ = ["DEFAULT_TOKENS", "ENDPOINT_KEYS", "PROVIDERS"]
