"""The firewall rule set every agent gets, and its settings' validation."""

from __future__ import annotations

import pytest

from contracts.bootstrap import BRIDGE_PORT
from contracts.firewall import (
    AI_API_ENV,
    DNS_ENV,
    GATEWAY_ENV,
    ORCHESTRATOR_ENV,
    VAULT_ENV,
    FirewallRule,
    FirewallSettingError,
    rules_from_env,
)


def test_inbound_reaches_only_the_bridge_port_from_orchestrator_and_gateway_and_outbound_only_configured() -> None:
    rules = rules_from_env(
        {
            ORCHESTRATOR_ENV: "203.0.113.10/32",
            GATEWAY_ENV: "203.0.113.20/32, 2001:db8::/64",
            VAULT_ENV: "198.51.100.0/28",
            AI_API_ENV: "192.0.2.0/24,192.0.2.0/24",
        }
    )
    assert rules.inbound == (
        FirewallRule("in", "tcp", str(BRIDGE_PORT), ("2001:db8::/64", "203.0.113.10/32", "203.0.113.20/32")),
    )
    assert rules.outbound == (
        FirewallRule("out", "tcp", "1-65535", ("192.0.2.0/24", "198.51.100.0/28", "2001:db8::/64", "203.0.113.20/32")),
    )
    assert all(rule.port != "22" for rule in rules.rules)


def test_resolvers_get_port_53_outbound_only_when_configured() -> None:
    rules = rules_from_env({DNS_ENV: "185.12.64.1/32,185.12.64.2/32"})
    assert [(r.protocol, r.port, r.cidrs) for r in rules.outbound if r.port == "53"] == [
        ("udp", "53", ("185.12.64.1/32", "185.12.64.2/32")),
        ("tcp", "53", ("185.12.64.1/32", "185.12.64.2/32")),
    ]


def test_development_defaults_are_loopback_only() -> None:
    rules = rules_from_env({})
    assert [(r.direction, r.cidrs) for r in rules.rules] == [("in", ("127.0.0.1/32",)), ("out", ("127.0.0.1/32",))]


@pytest.mark.parametrize("value", ["10.0.0.1/8", "not-an-address", "300.1.1.1/32"])
def test_a_bad_block_is_refused_naming_the_setting(value: str) -> None:
    with pytest.raises(FirewallSettingError, match=f"^{VAULT_ENV}: .*allowed: comma-separated"):
        rules_from_env({VAULT_ENV: value})
