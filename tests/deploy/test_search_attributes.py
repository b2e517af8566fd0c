"""A deployed cluster registers every approval search attribute the workflows publish, with the same type: a missing
one fails every workflow task that sets it."""

from __future__ import annotations

import re
from pathlib import Path

from workflows.search_attributes import APPROVAL_KEYS, server_flags

SCRIPT = Path(__file__).resolve().parents[2] / "deploy" / "compose" / "temporal" / "create-namespace.sh"


def test_the_compose_stack_registers_every_approval_search_attribute() -> None:
    registered = dict(re.findall(r"\b(Lobstack\w+)=(\w+)", SCRIPT.read_text()))
    assert registered == {key.name: key.indexed_value_type.name.title() for key in APPROVAL_KEYS}


def test_the_dev_server_registers_the_same() -> None:
    flags = server_flags()
    assert flags[::2] == ["--search-attribute"] * len(APPROVAL_KEYS)
    assert {f.split("=")[0] for f in flags[1::2]} == {key.name for key in APPROVAL_KEYS}
