"""The identifier rules, in the one place every side uses: the bridge on the VM, the gateway, (later) specs and clients.

Standard library only: it ships to the VM with the bridge, and the orchestrator imports it without pulling the bridge's
runtime in. It belongs to the contracts layer (docs: DESIGN.md, "Layer order") and moves there when that package
exists; until then it lives here because `bridge/` is what ships alone to the VM.

A tool request id never contains '-'. Agent ids may ("team-a-mail"), so `approval-<agent_id>-<request_id>` is only
unambiguous if the request id cannot: then the approval id splits at its last '-' into exactly one agent id and one
request id, and two agents' approvals can never share a workflow id.
"""

from __future__ import annotations

import re
from typing import TypeGuard

# Ids end up in VM names, Vault paths, policy names and workflow ids: DNS-label safe and short.
AGENT_ID = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,38}[a-z0-9])?")
AGENT_ID_RULE = "1-40 characters of a-z, 0-9 and '-', starting and ending with a letter or digit"
# No '-': see the module docstring.
REQUEST_ID = re.compile(r"[a-z0-9]{1,40}")
REQUEST_ID_RULE = "1-40 characters of a-z and 0-9 (no '-')"
# A tool, as the bridge's route, the gateway's request and a spec's skills name it.
TOOL = re.compile(r"[a-z][a-z0-9_.-]{0,63}")
TOOL_RULE = "1-64 characters of a-z, 0-9, '_', '.' and '-', starting with a letter"

APPROVAL_PREFIX = "approval-"


def _matches(pattern: re.Pattern[str], value: object) -> TypeGuard[str]:
    # fullmatch, never match/search: a trailing newline or anything after a valid prefix is refused.
    return isinstance(value, str) and pattern.fullmatch(value) is not None


def is_agent_id(value: object) -> TypeGuard[str]:
    return _matches(AGENT_ID, value)


def is_request_id(value: object) -> TypeGuard[str]:
    return _matches(REQUEST_ID, value)


def is_tool(value: object) -> TypeGuard[str]:
    return _matches(TOOL, value)


def approval_id(agent_id: str, request_id: str) -> str:
    """The ToolApproval workflow id of one agent's request; refuses ids that would make it ambiguous."""
    if not is_agent_id(agent_id):
        raise ValueError(f"agent_id: must be {AGENT_ID_RULE}")
    if not is_request_id(request_id):
        raise ValueError(f"request_id: must be {REQUEST_ID_RULE}")
    return f"{APPROVAL_PREFIX}{agent_id}-{request_id}"


def parse_approval_id(value: object) -> tuple[str, str] | None:
    """(agent_id, request_id) of an approval workflow id, or None if it is not one."""
    if not isinstance(value, str) or not value.startswith(APPROVAL_PREFIX):
        return None
    agent_id, dash, request_id = value[len(APPROVAL_PREFIX) :].rpartition("-")
    if not dash or not is_agent_id(agent_id) or not is_request_id(request_id):
        return None
    return agent_id, request_id
