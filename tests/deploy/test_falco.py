"""deploy/falco: the eight rules the design names, each with the fields Falco requires, a valid priority and tags,
and every list and macro it uses defined in the same file (so it loads with or without Falco's default ruleset)."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.deploy.support import DEPLOY, yaml_documents

RULES_FILE = DEPLOY / "falco" / "lobstack_rules.yaml"
PRIORITIES = {"EMERGENCY", "ALERT", "CRITICAL", "ERROR", "WARNING", "NOTICE", "INFORMATIONAL", "DEBUG"}
REQUIRED = {
    "Lobstack shell in agent container",
    "Lobstack privilege escalation",
    "Lobstack crypto mining",
    "Lobstack unexpected outbound connection from agent",
    "Lobstack read of Vault token or service-account credentials",
    "Lobstack write below system path",
    "Lobstack new executable at runtime",
    "Lobstack container drift",
}
(ITEMS,) = yaml_documents(RULES_FILE)
RULES = {item["rule"]: item for item in ITEMS if "rule" in item}
MACROS = {item["macro"]: item for item in ITEMS if "macro" in item}
LISTS = {item["list"]: item for item in ITEMS if "list" in item}


def test_the_eight_rules_are_there() -> None:
    assert set(RULES) == REQUIRED
    assert all(set(item) & {"rule", "macro", "list", "required_engine_version"} for item in ITEMS)


@pytest.mark.parametrize("name", sorted(REQUIRED))
def test_rule_has_required_fields_severity_and_tags(name: str) -> None:
    rule: dict[str, Any] = RULES[name]
    assert set(rule) >= {"rule", "desc", "condition", "output", "priority", "tags"}
    assert set(rule) <= {"rule", "desc", "condition", "output", "priority", "tags", "enabled", "exceptions"}
    assert rule["priority"] in PRIORITIES
    assert rule["tags"] and "lobstack" in rule["tags"] and all(isinstance(t, str) for t in rule["tags"])
    assert any(t.startswith("mitre_") for t in rule["tags"]), "each rule names its MITRE ATT&CK tactic"
    for field in ("desc", "condition", "output"):
        assert isinstance(rule[field], str) and rule[field].strip()
    assert "%container.id" in rule["output"], "the output identifies the container"


@pytest.mark.parametrize("item", [*RULES.values(), *MACROS.values()], ids=lambda i: i.get("rule") or i["macro"])
def test_conditions_are_balanced_and_reference_only_defined_lists_and_macros(item: dict[str, Any]) -> None:
    condition = item["condition"]
    assert condition.count("(") == condition.count(")")
    assert not re.search(r"\b(and|or)\s*(\)|$)", condition.strip()), "dangling operator"
    for name in re.findall(r"\blobstack_\w+", condition):
        assert name in MACROS or name in LISTS, f"{name} is not defined in {RULES_FILE.name}"


def test_lists_are_non_empty_and_used() -> None:
    used = " ".join(i["condition"] for i in [*RULES.values(), *MACROS.values()])
    for name, item in LISTS.items():
        assert item["items"], name
        assert re.search(rf"\b{name}\b", used), f"list {name} is never used"
    for name in MACROS:
        assert re.search(
            rf"\b{name}\b",
            " ".join(r["condition"] for r in [*RULES.values(), *MACROS.values()] if r.get("macro") != name),
        ), name
