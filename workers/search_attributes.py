"""The approval search attributes on the worker's namespace: registered at start, or the worker refuses to start.

A workflow that upserts an attribute the namespace does not know fails its workflow task again and again, so an
approval gate on such a cluster would wedge every agent that needs a person. Checking once at start turns that into
one clear line before any workflow runs.
"""

from __future__ import annotations

import logging

from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest, ListSearchAttributesRequest
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from workflows.search_attributes import APPROVAL_KEYS

__all__ = ["SearchAttributesMissing", "ensure_search_attributes"]

log = logging.getLogger("lobstack.worker")


class SearchAttributesMissing(RuntimeError):
    """The namespace lacks approval search attributes and this worker may not register them."""


async def ensure_search_attributes(client: Client) -> list[str]:
    """Register whichever approval attributes the namespace lacks; returns the names registered (idempotent).

    Refuses with the exact commands to run when an attribute exists with another type or the caller may not add them.
    """
    namespace = client.namespace
    known = await client.operator_service.list_search_attributes(ListSearchAttributesRequest(namespace=namespace))
    have = {**known.system_attributes, **known.custom_attributes}
    missing: dict[str, IndexedValueType.ValueType] = {}
    for key in APPROVAL_KEYS:
        wanted = IndexedValueType.ValueType(key.indexed_value_type)
        if key.name not in have:
            missing[key.name] = wanted
        elif have[key.name] != wanted:
            raise SearchAttributesMissing(
                f"search attribute {key.name} exists in namespace {namespace} as "
                f"{_type_name(have[key.name])}, but approvals need {_type_name(wanted)}"
            )
    if not missing:
        return []
    try:
        await client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(namespace=namespace, search_attributes=missing)
        )
    except RPCError as err:
        if err.status not in (
            RPCStatusCode.PERMISSION_DENIED,
            RPCStatusCode.UNAUTHENTICATED,
            RPCStatusCode.UNIMPLEMENTED,
        ):
            raise
        commands = "; ".join(
            f"temporal operator search-attribute create -n {namespace} --name {name} --type {_type_name(kind)}"
            for name, kind in missing.items()
        )
        raise SearchAttributesMissing(
            f"namespace {namespace} lacks the approval search attributes {', '.join(missing)} and this worker may "
            f"not register them ({err.status.name}); an operator runs: {commands}"
        ) from None
    log.info("registered search attributes %s in namespace %s", ", ".join(missing), namespace)
    return list(missing)


def _type_name(kind: IndexedValueType.ValueType) -> str:
    """As the `temporal` CLI spells it: Keyword, Datetime, Text."""
    return IndexedValueType.Name(kind).removeprefix("INDEXED_VALUE_TYPE_").title()
