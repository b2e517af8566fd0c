"""Building the cloud adapters from a worker's environment.

    HCLOUD_TOKEN               (+ optional HCLOUD_ENDPOINT)         -> hetzner
    DIGITALOCEAN_ACCESS_TOKEN  (+ optional DIGITALOCEAN_END_POINT)  -> digitalocean
    VULTR_API_KEY              (+ optional VULTR_ENDPOINT)          -> vultr

The environment is passed in (not read from `os.environ` here), so a worker and a test build the same way.
Errors name the variable that is missing, never its value.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

from activities.cloud import digitalocean, hetzner, vultr
from activities.cloud.base import CloudProvider
from activities.errors import ProviderRejected

CLOUD_PROVIDER_NAMES = ("hetzner", "digitalocean", "vultr")


def _required(env: Mapping[str, str], variable: str, provider: str) -> str:
    value = env.get(variable, "").strip()
    if not value:
        raise ProviderRejected(f"provider {provider!r} needs {variable} in the environment")
    return value


def hetzner_from_env(env: Mapping[str, str]) -> hetzner.HetznerProvider:
    return hetzner.HetznerProvider(
        token=_required(env, "HCLOUD_TOKEN", "hetzner"),
        endpoint=env.get("HCLOUD_ENDPOINT") or hetzner.DEFAULT_ENDPOINT,
    )


def digitalocean_from_env(env: Mapping[str, str]) -> digitalocean.DigitalOceanProvider:
    return digitalocean.DigitalOceanProvider(
        token=_required(env, "DIGITALOCEAN_ACCESS_TOKEN", "digitalocean"),
        endpoint=env.get("DIGITALOCEAN_END_POINT") or digitalocean.DEFAULT_ENDPOINT,
    )


def vultr_from_env(env: Mapping[str, str]) -> vultr.VultrProvider:
    return vultr.VultrProvider(
        token=_required(env, "VULTR_API_KEY", "vultr"),
        endpoint=env.get("VULTR_ENDPOINT") or vultr.DEFAULT_ENDPOINT,
    )


_FACTORIES: dict[str, Callable[[Mapping[str, str]], CloudProvider]] = {
    "hetzner": hetzner_from_env,
    "digitalocean": digitalocean_from_env,
    "vultr": vultr_from_env,
}


def build_providers(names: Iterable[str], env: Mapping[str, str]) -> dict[str, CloudProvider]:
    """One adapter per named cloud provider; refuses unknown names and missing credentials before building any."""
    wanted = list(dict.fromkeys(name.strip() for name in names if name.strip()))
    unknown = [name for name in wanted if name not in _FACTORIES]
    if unknown:
        raise ProviderRejected(
            f"providers: unknown {', '.join(repr(n) for n in unknown)}; allowed: {', '.join(CLOUD_PROVIDER_NAMES)}"
        )
    return {name: _FACTORIES[name](env) for name in wanted}


__all__ = [
    "CLOUD_PROVIDER_NAMES",
    "build_providers",
    "digitalocean_from_env",
    "hetzner_from_env",
    "vultr_from_env",
]
