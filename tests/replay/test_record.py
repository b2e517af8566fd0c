"""`make histories` end to end on one scenario, on the session's servers: what it saves is sealed and replays.

The full recording starts its own servers and takes minutes, so it runs when a version is cut, not in `make test`;
this keeps its path (a scenario on an encrypted stack, the runs fetched and saved) from rotting in between.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment

import devstack
from cloudsim.testing import RunningSim
from tests.replay.codec_test_key import recording_converter
from tests.replay.record import runs_of, save
from tests.replay.recorded import Recorded
from tests.replay.scenarios import SCENARIOS, Stacks
from tests.replay.sealing import unsealed
from tests.stack import make_stack, reap
from workers.converter import with_converter
from workers.replay import workflow_replayer

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_a_recorded_scenario_is_saved_sealed_and_replays(
    temporal_dev: WorkflowEnvironment, openbao: devstack.OpenBaoDev, sim: RunningSim, tmp_path: Path
) -> None:
    client = with_converter(temporal_dev.client, recording_converter())
    stack = make_stack(client, openbao, f"sqlite:///{tmp_path / 'registry.db'}", tmp_path)
    [scenario] = [s for s in SCENARIOS if s.name == "approval_rejected"]
    try:
        execution = await scenario.run(Stacks(stack, stack, sim))
        runs = await runs_of(stack.temporal, execution.workflow_id)
    finally:
        reap(stack)
    directory = tmp_path / "histories" / "test"
    directory.mkdir(parents=True)
    [path] = save(directory, scenario.name, runs, replace=False)
    assert save(directory, scenario.name, runs, replace=False) == [], "a recorded history is kept, not overwritten"

    run = Recorded("test", path.stem, path)
    assert run.workflow_type() == "ToolApproval"
    assert unsealed(run.document()) == []
    result = await workflow_replayer(recording_converter()).replay_workflow(run.history())
    assert result.replay_failure is None
