"""Raw messages to live workflows: payload lists of any count, JSON and encoding, straight through Temporal's gRPC API.

The typed client would encode (and, with a codec, encrypt) whatever it is given; a hostile sender does not have to.
These helpers put the given `Payload`s on the wire exactly as they are, the way `temporal workflow signal --input-meta
... --input-base64` or any other SDK can.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from typing import Any

from hypothesis import strategies as st
from temporalio.api.common.v1 import Payload, Payloads, WorkflowExecution, WorkflowType
from temporalio.api.enums.v1 import EventType, UpdateWorkflowExecutionLifecycleStage, WorkflowTaskFailedCause
from temporalio.api.query.v1 import WorkflowQuery
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.update.v1 import Input, Meta, Outcome, Request, WaitPolicy
from temporalio.api.workflowservice.v1 import (
    QueryWorkflowRequest,
    SignalWorkflowExecutionRequest,
    StartWorkflowExecutionRequest,
    UpdateWorkflowExecutionRequest,
)
from temporalio.client import Client, WorkflowHandle
from temporalio.service import RPCError

from connection.codec import KEY_ID_METADATA

# --- what a hostile sender puts in a payload -------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=6,
)
# Bodies with our messages' field names and values of any type: the closest misses.
_FIELDS = ["approver", "reason", "approved", "requested_by", "skills", "approval_required", "healthy", "status"]
shaped_bodies = st.dictionaries(st.sampled_from(_FIELDS), json_values, max_size=3)


def json_payload(value: object) -> Payload:
    return Payload(metadata={"encoding": b"json/plain"}, data=json.dumps(value).encode())


def payloads(key_ids: Sequence[str] = ("k-unknown",)) -> st.SearchStrategy[Payload]:
    """One payload of any kind: JSON of any shape, broken JSON, nulls, raw bytes, unknown encodings, forged
    protobuf, ciphertexts no key opens (under an unknown key id and under the worker's own)."""
    return st.one_of(
        json_values.map(json_payload),
        shaped_bodies.map(json_payload),
        st.binary(max_size=16).map(lambda b: Payload(metadata={"encoding": b"json/plain"}, data=b"{" + b)),
        st.just(Payload(metadata={"encoding": b"binary/null"})),
        st.binary(max_size=16).map(lambda b: Payload(metadata={"encoding": b"binary/plain"}, data=b)),
        st.binary(max_size=16).map(
            lambda b: Payload(metadata={"encoding": b"json/protobuf", "messageType": b"no.Such"}, data=b)
        ),
        st.tuples(st.sampled_from(list(key_ids)), st.binary(max_size=48)).map(
            lambda t: Payload(metadata={"encoding": b"binary/encrypted", KEY_ID_METADATA: t[0].encode()}, data=t[1])
        ),
        st.tuples(st.text(max_size=12), st.binary(max_size=8)).map(
            lambda t: Payload(metadata={"encoding": t[0].encode()}, data=t[1])
        ),
        st.binary(max_size=8).map(lambda b: Payload(data=b)),  # no encoding at all
    )


def payload_lists(key_ids: Sequence[str] = ("k-unknown",)) -> st.SearchStrategy[list[Payload]]:
    return st.lists(payloads(key_ids), max_size=4)


def plain_json(items: Sequence[Payload]) -> list[object] | None:
    """The JSON values of a list of plain-JSON payloads, or None when any payload is something else."""
    values: list[object] = []
    for p in items:
        if p.metadata.get("encoding") == b"binary/null":
            values.append(None)
            continue
        if p.metadata.get("encoding") != b"json/plain":
            return None
        try:
            values.append(json.loads(p.data))
        except ValueError:
            return None
    return values


# --- sending them ----------------------------------------------------------------------------------------------------


async def signal(client: Client, workflow_id: str, name: str, items: Sequence[Payload]) -> None:
    await client.workflow_service.signal_workflow_execution(
        SignalWorkflowExecutionRequest(
            namespace=client.namespace,
            workflow_execution=WorkflowExecution(workflow_id=workflow_id),
            signal_name=name,
            input=Payloads(payloads=list(items)),
            identity="hostile-test",
            request_id=str(uuid.uuid4()),
        )
    )


async def update(client: Client, workflow_id: str, name: str, items: Sequence[Payload]) -> str:
    """Send an update and wait for its outcome: "success" or "failure" (a refusal reaches the sender either way)."""
    outcome = await update_outcome(client, workflow_id, name, items)
    return outcome.WhichOneof("value") or "none"


async def update_outcome(client: Client, workflow_id: str, name: str, items: Sequence[Payload]) -> Outcome:
    """Send an update and return its outcome as the sender (the Web UI's update dialog) receives it."""
    response = await client.workflow_service.update_workflow_execution(
        UpdateWorkflowExecutionRequest(
            namespace=client.namespace,
            workflow_execution=WorkflowExecution(workflow_id=workflow_id),
            wait_policy=WaitPolicy(
                lifecycle_stage=UpdateWorkflowExecutionLifecycleStage.UPDATE_WORKFLOW_EXECUTION_LIFECYCLE_STAGE_COMPLETED
            ),
            request=Request(
                meta=Meta(update_id=str(uuid.uuid4()), identity="hostile-test"),
                input=Input(name=name, args=Payloads(payloads=list(items))),
            ),
        )
    )
    return response.outcome


async def query(client: Client, workflow_id: str, name: str, items: Sequence[Payload]) -> str:
    """ "answered" or "refused" (a failed query is an RPC error to the sender, never the workflow's problem)."""
    try:
        await client.workflow_service.query_workflow(
            QueryWorkflowRequest(
                namespace=client.namespace,
                execution=WorkflowExecution(workflow_id=workflow_id),
                query=WorkflowQuery(query_type=name, query_args=Payloads(payloads=list(items))),
            )
        )
    except RPCError:
        return "refused"
    return "answered"


async def start(
    client: Client, workflow_id: str, workflow_type: str, task_queue: str, items: Sequence[Payload]
) -> None:
    await client.workflow_service.start_workflow_execution(
        StartWorkflowExecutionRequest(
            namespace=client.namespace,
            workflow_id=workflow_id,
            workflow_type=WorkflowType(name=workflow_type),
            task_queue=TaskQueue(name=task_queue),
            input=Payloads(payloads=list(items)),
            identity="hostile-test",
            request_id=str(uuid.uuid4()),
        )
    )


# --- what must never be in the history -------------------------------------------------------------------------------

# The server fails a task that completed a workflow while new events were arriving, and the worker runs it again with
# them: a server-side race, not our code failing, and harmless.
_BENIGN = {WorkflowTaskFailedCause.WORKFLOW_TASK_FAILED_CAUSE_UNHANDLED_COMMAND}


async def workflow_task_failures(handle: WorkflowHandle[Any, Any]) -> list[str]:
    """Every failed workflow task in the history, with its cause and message (should be none)."""
    failed = []
    async for event in handle.fetch_history_events():
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED:
            attributes = event.workflow_task_failed_event_attributes
            if attributes.cause not in _BENIGN:
                failed.append(f"{WorkflowTaskFailedCause.Name(attributes.cause)}: {attributes.failure.message}")
    return failed
