"""The typed search attribute keys a run that waits for a person publishes (names in contracts/approval_search.py).

AgentLifecycle sets them with kind `agent` while it waits for approval, ToolApproval with kind `tool`.
"""

from __future__ import annotations

from typing import Any

from temporalio.common import SearchAttributeKey

from contracts import approval_search as names

APPROVAL_STATE = SearchAttributeKey.for_keyword(names.APPROVAL_STATE)
APPROVAL_KIND = SearchAttributeKey.for_keyword(names.APPROVAL_KIND)
ACCOUNT = SearchAttributeKey.for_keyword(names.ACCOUNT)
AGENT_ID = SearchAttributeKey.for_keyword(names.AGENT_ID)
APPROVAL_DEADLINE = SearchAttributeKey.for_datetime(names.APPROVAL_DEADLINE)

APPROVAL_KEYS: tuple[SearchAttributeKey[Any], ...] = (
    APPROVAL_STATE,
    APPROVAL_KIND,
    ACCOUNT,
    AGENT_ID,
    APPROVAL_DEADLINE,
)


def server_flags() -> list[str]:
    """`temporal server start-dev` arguments that register every key."""
    flags: list[str] = []
    for key in APPROVAL_KEYS:
        flags += ["--search-attribute", f"{key.name}={key.indexed_value_type.name.title()}"]
    return flags
