"""Every recorded history of every version replays on today's workflow code, as the workflow worker would run it.

A change to a workflow meets the histories its previous code wrote: runs open for days (lifecycles, approvals) are
replayed by the new worker after a deploy, and one that replays differently fails in production with a
non-determinism error. Here each run recorded by `make histories` (tests/replay/histories/<version>/) is replayed
with the worker's own options (workers/replay.py) and the test-only codec key it was recorded with. A failure names
the history, its workflow and the event that diverged; how to make the change compatible is in the README
("Changing a workflow").
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from temporalio.worker import Replayer

from tests.replay.codec_test_key import recording_converter
from tests.replay.recorded import Recorded, recorded
from workers.replay import workflow_replayer
from workers.worker import WORKFLOWS

RECORDED = recorded()


@pytest.fixture(scope="module")
def replayer() -> Replayer:
    return workflow_replayer(recording_converter())


@pytest.mark.asyncio(loop_scope="session")
@pytest.mark.parametrize("run", RECORDED, ids=[run.label for run in RECORDED])
async def test_recorded_history_replays_on_todays_code(run: Recorded, replayer: Replayer) -> None:
    result = await replayer.replay_workflow(run.history(), raise_on_replay_failure=False)
    if result.replay_failure is not None:
        pytest.fail(
            f"{run.label} ({run.workflow_type()}) no longer replays on today's workflow code: "
            f"{_divergence(run, result.replay_failure)}. Keep the old commands behind workflow.patched(...) or deploy "
            "the change as a new Worker Deployment Version (README, 'Changing a workflow').",
            pytrace=False,
        )


def _divergence(run: Recorded, failure: Exception) -> str:
    """The SDK's reason without its debug dump, and the recorded event it names, e.g. which activity was scheduled."""
    text = str(failure)
    reason = re.search(r'message: "((?:[^"\\]|\\.)*)"', text)
    said = reason.group(1) if reason else text
    event_id = re.search(r"HistoryEvent\(id: (\d+)", said)
    if event_id is None:
        return said
    return f"{said}; recorded event {event_id.group(1)}: {_describe(run.document(), int(event_id.group(1)))}"


def _describe(history: dict[str, Any], event_id: int) -> str:
    event = next((e for e in history["events"] if int(e["eventId"]) == event_id), None)
    if event is None:
        return "not in the history"
    kind = str(event["eventType"]).removeprefix("EVENT_TYPE_")
    attributes: dict[str, Any] = next((v for k, v in event.items() if k.endswith("EventAttributes")), {})
    named = attributes.get("activityType", {}).get("name") or attributes.get("signalName") or attributes.get("timerId")
    return f"{kind} {named}" if named else kind


def test_every_workflow_the_worker_runs_has_recorded_histories() -> None:
    recorded_types = {run.workflow_type() for run in RECORDED}
    # The SDK keeps a workflow's registered name on the class; it has no public accessor.
    served = {workflow.__temporal_workflow_definition.name for workflow in WORKFLOWS}  # type: ignore[attr-defined]
    assert served <= recorded_types, f"no recorded history of {sorted(served - recorded_types)}: run `make histories`"
