"""The lifecycle worker applies every job of an activation before workflow code runs, and new histories say so.

Without it, a `destroy` signal and an activity result that reach one workflow task could be seen in one order on the
first run and the other on a replay after a worker crash (a non-determinism failure found by `make chaos`). The flag
is recorded in the history's first workflow task, so every later replay, on any worker, uses the same order."""

from __future__ import annotations

from temporalio.api.enums.v1 import EventType
from temporalio.worker._workflow_instance import _WorkflowLogicFlag

from contracts.identifiers import workflow_id
from tests.stack import Stack


async def test_new_histories_record_single_batch_activations(stack: Stack) -> None:
    spec = stack.spec(require_approval=True)
    async with stack.workers():
        await stack.client.create_agent(spec)
        await stack.client.reject(spec.agent_id, approver="erin")
        await stack.client.result(spec.agent_id)
    history = await stack.temporal.get_workflow_handle(workflow_id(spec.agent_id)).fetch_history()
    first_task = next(e for e in history.events if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED)
    used = first_task.workflow_task_completed_event_attributes.sdk_metadata.lang_used_flags
    assert _WorkflowLogicFlag.PROCESS_WORKFLOW_ACTIVATION_JOBS_AS_SINGLE_BATCH in used
