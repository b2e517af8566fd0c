"""A worker registers the approval search attributes its namespace lacks, and refuses a namespace that types one wrong.

On the Temporal dev server, in namespaces made for the test (the session's own namespace has them from the start).
"""

from __future__ import annotations

import uuid

import pytest
from google.protobuf.duration_pb2 import Duration
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest, ListSearchAttributesRequest
from temporalio.api.workflowservice.v1 import RegisterNamespaceRequest
from temporalio.client import Client
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from contracts import approval_search as names
from tests.stack import eventually
from workers.search_attributes import SearchAttributesMissing, ensure_search_attributes
from workflows.search_attributes import APPROVAL_KEYS

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def _new_namespace(env: WorkflowEnvironment) -> Client:
    namespace = f"sa-{uuid.uuid4().hex[:8]}"
    await env.client.workflow_service.register_namespace(
        RegisterNamespaceRequest(namespace=namespace, workflow_execution_retention_period=Duration(seconds=86400))
    )
    client = await Client.connect(env.client.service_client.config.target_host, namespace=namespace)

    async def known() -> dict[str, IndexedValueType.ValueType] | None:
        try:  # a namespace is served a moment after it is registered
            found = await client.operator_service.list_search_attributes(
                ListSearchAttributesRequest(namespace=namespace)
            )
        except RPCError:
            return None
        return dict(found.custom_attributes)

    await eventually(known, what=f"namespace {namespace} served")
    return client


async def _custom(client: Client) -> dict[str, IndexedValueType.ValueType]:
    found = await client.operator_service.list_search_attributes(
        ListSearchAttributesRequest(namespace=client.namespace)
    )
    return dict(found.custom_attributes)


async def test_missing_attributes_are_registered_once(temporal_dev: WorkflowEnvironment) -> None:
    client = await _new_namespace(temporal_dev)
    assert not {key.name for key in APPROVAL_KEYS} & set(await _custom(client))

    registered = await ensure_search_attributes(client)
    assert sorted(registered) == sorted(key.name for key in APPROVAL_KEYS)
    custom = await _custom(client)
    for key in APPROVAL_KEYS:
        assert custom[key.name] == IndexedValueType.ValueType(key.indexed_value_type)
    assert await ensure_search_attributes(client) == [], "a second worker start registers nothing"


async def test_an_attribute_of_another_type_is_refused_by_name(temporal_dev: WorkflowEnvironment) -> None:
    client = await _new_namespace(temporal_dev)
    await client.operator_service.add_search_attributes(
        AddSearchAttributesRequest(
            namespace=client.namespace,
            search_attributes={names.ACCOUNT: IndexedValueType.INDEXED_VALUE_TYPE_TEXT},
        )
    )
    with pytest.raises(SearchAttributesMissing) as refused:
        await ensure_search_attributes(client)
    message = str(refused.value)
    assert names.ACCOUNT in message and client.namespace in message
    assert "as Text, but approvals need Keyword" in message
    assert names.APPROVAL_STATE not in await _custom(client), "nothing is registered when one is refused"
