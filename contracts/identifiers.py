"""Every name derived from an id, in the one place every side uses: the bridge on the VM, the gateway, the workflows,
the activities, the orphan sweep and the client.

- workflow ids: `agent-<agent_id>` (`workflow_id`, `agent_of`) and `approval-<agent_id>-<request_id>` (`approval_id`,
  `parse_approval_id`, `approval_prefix`);
- Vault: the policy, AppRole role and Transit key of an agent are all `agent-<agent_id>` (`vault_name`, `agent_of`),
  its KV secrets live under `agents/<agent_id>/` of the KV mount (`kv_prefix`);
- TLS: an agent's bridge serves a certificate for the DNS name `<agent_id>.agents.lobstack.internal`
  (`certificate_name`), issued by Vault's PKI under the agent's role `agent-<agent_id>`; it names the agent, never an
  address, so a reused address or a swapped VM cannot present it;
- clouds: the VM is named `lobstack-<agent_id>` (`vm_name`) and carries the labels `AGENT_LABEL` and `ACCOUNT_LABEL`.

Standard library only: it ships to the VM with the bridge, and the client imports it without the worker.

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
# Workflow ids of lifecycles and the Vault names of agents (policy, AppRole role, Transit key) share this prefix.
AGENT_PREFIX = "agent-"
# KV mount the agents' secrets live in unless configured otherwise, and the folder of that mount that holds them.
DEFAULT_KV_MOUNT = "secret"
KV_AGENTS_PREFIX = "agents/"
# VMs: a deterministic name, so a retried create finds the VM of the first attempt, and labels (Hetzner labels,
# DigitalOcean and Vultr tags) by which the orphan sweep finds every managed VM and its owner.
VM_NAME_PREFIX = "lobstack-"
# Under ".internal", the top-level domain reserved for private use (ICANN, 2024): never resolvable on the internet.
AGENT_CERT_DOMAIN = "agents.lobstack.internal"
AGENT_LABEL = "lobstack-agent"
ACCOUNT_LABEL = "lobstack-account"


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
    return f"{approval_prefix(agent_id)}{request_id}"


def parse_approval_id(value: object) -> tuple[str, str] | None:
    """(agent_id, request_id) of an approval workflow id, or None if it is not one."""
    if not isinstance(value, str) or not value.startswith(APPROVAL_PREFIX):
        return None
    agent_id, dash, request_id = value[len(APPROVAL_PREFIX) :].rpartition("-")
    if not dash or not is_agent_id(agent_id) or not is_request_id(request_id):
        return None
    return agent_id, request_id


def approval_prefix(agent_id: str) -> str:
    """What every approval id of this agent starts with; the trailing '-' keeps agent `a` out of agent `a-b`'s... only
    with `parse_approval_id`, since `a-b` also starts with `a-`: filter candidates with it."""
    return f"{APPROVAL_PREFIX}{agent_id}-"


def workflow_id(agent_id: str) -> str:
    """The AgentLifecycle workflow id of an agent."""
    return f"{AGENT_PREFIX}{agent_id}"


def vault_name(agent_id: str) -> str:
    """The agent's Vault policy, AppRole role and Transit key name."""
    return f"{AGENT_PREFIX}{agent_id}"


def agent_of(name: object) -> str | None:
    """The agent id in a lifecycle workflow id or a Vault name (`agent-<id>`); None for anything that is not ours."""
    if not isinstance(name, str) or not name.startswith(AGENT_PREFIX):
        return None
    agent_id = name[len(AGENT_PREFIX) :]
    return agent_id if is_agent_id(agent_id) else None


def kv_prefix(agent_id: str) -> str:
    """The agent's folder in the KV mount, with the trailing slash that keeps agent `a` out of agent `ab`."""
    return f"{KV_AGENTS_PREFIX}{agent_id}/"


def certificate_name(agent_id: str) -> str:
    """The one DNS name an agent's TLS certificate carries (and its verifiers expect); ids are DNS-label safe."""
    if not is_agent_id(agent_id):
        raise ValueError(f"agent_id: must be {AGENT_ID_RULE}")
    return f"{agent_id}.{AGENT_CERT_DOMAIN}"


def vm_name(agent_id: str) -> str:
    """The deterministic VM name for an agent; agent ids are already DNS-label safe."""
    return f"{VM_NAME_PREFIX}{agent_id}"


__all__ = [
    "ACCOUNT_LABEL",
    "AGENT_CERT_DOMAIN",
    "AGENT_ID",
    "AGENT_ID_RULE",
    "AGENT_LABEL",
    "AGENT_PREFIX",
    "APPROVAL_PREFIX",
    "DEFAULT_KV_MOUNT",
    "KV_AGENTS_PREFIX",
    "REQUEST_ID",
    "REQUEST_ID_RULE",
    "TOOL",
    "TOOL_RULE",
    "VM_NAME_PREFIX",
    "agent_of",
    "approval_id",
    "approval_prefix",
    "certificate_name",
    "is_agent_id",
    "is_request_id",
    "is_tool",
    "kv_prefix",
    "parse_approval_id",
    "vault_name",
    "vm_name",
    "workflow_id",
]
