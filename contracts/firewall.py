"""An agent's provider firewall: which addresses may reach its VM, and where its VM may connect to.

Inbound: only the orchestrator (the health checks) and the gateway, and only to the bridge's port; nothing else, SSH
(port 22) included. Outbound: only the configured destinations (Vault, the gateway, the AI APIs' ranges). Every
adapter renders the same `FirewallRules` in its provider's shape (activities/cloud/firewalls.py).

The addresses are worker settings, CIDR blocks separated by commas; development defaults to loopback, where the
development stack runs:

    LOBSTACK_FIREWALL_ORCHESTRATOR_CIDRS  inbound, to the bridge port   (default 127.0.0.1/32)
    LOBSTACK_FIREWALL_GATEWAY_CIDRS       inbound and outbound           (default 127.0.0.1/32)
    LOBSTACK_FIREWALL_VAULT_CIDRS         outbound                       (default 127.0.0.1/32)
    LOBSTACK_FIREWALL_AI_API_CIDRS        outbound                       (default none)
    LOBSTACK_FIREWALL_DNS_CIDRS           outbound, port 53 (udp, tcp)   (default none)

A provider firewall with any outbound rule drops every other outbound packet, DNS included: a VM that must resolve
names (Vault or the AI APIs by host name) needs its resolvers in LOBSTACK_FIREWALL_DNS_CIDRS.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from contracts.bootstrap import BRIDGE_PORT
from contracts.identifiers import AGENT_LABEL, vm_name

ORCHESTRATOR_ENV = "LOBSTACK_FIREWALL_ORCHESTRATOR_CIDRS"
GATEWAY_ENV = "LOBSTACK_FIREWALL_GATEWAY_CIDRS"
VAULT_ENV = "LOBSTACK_FIREWALL_VAULT_CIDRS"
AI_API_ENV = "LOBSTACK_FIREWALL_AI_API_CIDRS"
DNS_ENV = "LOBSTACK_FIREWALL_DNS_CIDRS"
DEV_DEFAULTS: dict[str, str] = {
    ORCHESTRATOR_ENV: "127.0.0.1/32",
    GATEWAY_ENV: "127.0.0.1/32",
    VAULT_ENV: "127.0.0.1/32",
    AI_API_ENV: "",
    DNS_ENV: "",
}
_WHAT = {
    ORCHESTRATOR_ENV: "the workers that health-check agents' bridges",
    GATEWAY_ENV: "the agent gateway",
    VAULT_ENV: "Vault (OpenBao)",
}
# Outbound TCP to the allowed destinations: any port (Vault, the gateway and HTTPS APIs listen where they like).
ALL_PORTS = "1-65535"
# Providers cap addresses per rule (Hetzner: 100 CIDR blocks).
MAX_CIDRS = 100

Direction = Literal["in", "out"]


class FirewallSettingError(ValueError):
    """A firewall setting that is not a list of CIDR blocks; the message names the setting and what is allowed."""


@dataclass(frozen=True)
class FirewallRule:
    direction: Direction
    # "tcp" only today: the bridge and every destination speak HTTP(S).
    protocol: Literal["tcp", "udp"]
    # One port ("8787") or a range ("1-65535").
    port: str
    # Sources for "in", destinations for "out"; canonical CIDR blocks, sorted, never empty.
    cidrs: tuple[str, ...]


@dataclass(frozen=True)
class FirewallRules:
    rules: tuple[FirewallRule, ...]

    @property
    def inbound(self) -> tuple[FirewallRule, ...]:
        return tuple(r for r in self.rules if r.direction == "in")

    @property
    def outbound(self) -> tuple[FirewallRule, ...]:
        return tuple(r for r in self.rules if r.direction == "out")


def parse_cidrs(setting: str, raw: str) -> tuple[str, ...]:
    """Comma-separated CIDR blocks, canonical and deduplicated; a bad one is refused naming the setting."""
    found: list[str] = []
    for item in (part.strip() for part in raw.split(",")):
        if not item:
            continue
        try:
            network = ipaddress.ip_network(item, strict=True)
        except ValueError as exc:
            raise FirewallSettingError(
                f"{setting}: {item!r} is not a CIDR block ({exc}); allowed: comma-separated IPv4/IPv6 CIDR blocks "
                "with no host bits set, like 203.0.113.7/32,2001:db8::/64"
            ) from None
        if str(network) not in found:
            found.append(str(network))
    if len(found) > MAX_CIDRS:
        raise FirewallSettingError(f"{setting}: {len(found)} CIDR blocks; allowed: at most {MAX_CIDRS}")
    return tuple(sorted(found))


def firewall_rules(
    *,
    orchestrator: tuple[str, ...],
    gateway: tuple[str, ...],
    vault: tuple[str, ...],
    ai_apis: tuple[str, ...],
    dns: tuple[str, ...] = (),
    bridge_port: int = BRIDGE_PORT,
) -> FirewallRules:
    """The one rule set every agent gets; a rule with no address is left out (a provider firewall denies by default)."""
    inbound = tuple(sorted(set(orchestrator) | set(gateway)))
    outbound = tuple(sorted(set(gateway) | set(vault) | set(ai_apis)))
    rules: list[FirewallRule] = []
    if inbound:
        rules.append(FirewallRule("in", "tcp", str(bridge_port), inbound))
    if outbound:
        rules.append(FirewallRule("out", "tcp", ALL_PORTS, outbound))
    if dns:
        resolvers = tuple(sorted(set(dns)))
        rules += [FirewallRule("out", "udp", "53", resolvers), FirewallRule("out", "tcp", "53", resolvers)]
    return FirewallRules(tuple(rules))


# In production a loopback default would shut the orchestrator's health checks out of every VM: these must be given.
REQUIRED_IN_PRODUCTION = (ORCHESTRATOR_ENV, GATEWAY_ENV, VAULT_ENV)


def rules_from_env(env: Mapping[str, str], *, production: bool = False) -> FirewallRules:
    """The rule set from a worker's environment (development defaults where unset); refuses a bad block by name."""
    if production:
        missing = [name for name in REQUIRED_IN_PRODUCTION if not env.get(name, "").strip()]
        if missing:
            raise FirewallSettingError(
                f"{missing[0]} is required when LOBSTACK_ENV=production: the CIDR blocks of "
                f"{_WHAT[missing[0]]}, comma-separated"
            )

    def cidrs(name: str) -> tuple[str, ...]:
        return parse_cidrs(name, env.get(name, DEV_DEFAULTS[name]))

    return firewall_rules(
        orchestrator=cidrs(ORCHESTRATOR_ENV),
        gateway=cidrs(GATEWAY_ENV),
        vault=cidrs(VAULT_ENV),
        ai_apis=cidrs(AI_API_ENV),
        dns=cidrs(DNS_ENV),
    )


def firewall_name(agent_id: str) -> str:
    """Hetzner and DigitalOcean firewall name: the VM's name, so one look at the console pairs them."""
    return vm_name(agent_id)


def firewall_description(agent_id: str) -> str:
    """Vultr firewall groups have no name or labels, only a description: this one, exactly, finds the agent's."""
    return f"{AGENT_LABEL}={agent_id}"


__all__ = [
    "AI_API_ENV",
    "ALL_PORTS",
    "DEV_DEFAULTS",
    "DNS_ENV",
    "GATEWAY_ENV",
    "MAX_CIDRS",
    "ORCHESTRATOR_ENV",
    "REQUIRED_IN_PRODUCTION",
    "VAULT_ENV",
    "Direction",
    "FirewallRule",
    "FirewallRules",
    "FirewallSettingError",
    "firewall_description",
    "firewall_name",
    "firewall_rules",
    "parse_cidrs",
    "rules_from_env",
]
