"""Histories recorded by earlier versions of AgentLifecycle replay on the current code without non-determinism.

`histories/` holds one lifecycle recorded before the workflow held its state in one `LifecycleState` (three runs joined
by continue-as-new: approved and provisioned; a refused message and a degrade; skills updated and destroyed). The later
runs start from a continue-as-new input of the old shape, so replaying them also proves that shape is still accepted.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.converter import DataConverter
from temporalio.worker import Replayer

from workers.converter import worker_converter
from workflows.agent_lifecycle import AgentLifecycleWorkflow

HISTORIES = {path.stem: path.read_text() for path in sorted((Path(__file__).parent / "histories").glob("*.json"))}

pytestmark = pytest.mark.asyncio(loop_scope="session")


@pytest.mark.parametrize("name", [name for name in HISTORIES if name.startswith("lifecycle_")])
async def test_recorded_lifecycle_history_replays(name: str) -> None:
    history = WorkflowHistory.from_json("agent-recorded", HISTORIES[name])
    replayer = Replayer(workflows=[AgentLifecycleWorkflow], data_converter=worker_converter(DataConverter.default))
    await replayer.replay_workflow(history)
