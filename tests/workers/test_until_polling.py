"""Waiting for pollers survives a dropped connection and still fails on a real fault.

The dev server cannot be made to drop a connection on demand, so the fault comes from a stand-in for the gRPC service:
the code under test is the classification of its answers, not Temporal.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any, cast

import pytest
from temporalio.api.enums.v1 import TaskQueueType
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from workers.worker import _has_poller

WORKFLOW = TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW


@dataclass
class _Answers:
    """Raises the queued errors in order, then answers with one poller."""

    errors: list[RPCError]
    calls: int = 0

    async def describe_task_queue(self, request: Any) -> Any:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return _Described(pollers=["one"])


@dataclass
class _Described:
    pollers: list[str] = field(default_factory=list)


@dataclass
class _Client:
    workflow_service: _Answers
    namespace: str = "default"


def _client(*errors: RPCError) -> tuple[Client, _Answers]:
    answers = _Answers(list(errors))
    return cast(Client, _Client(answers)), answers


async def test_a_dropped_connection_means_ask_again() -> None:
    client, answers = _client(RPCError("operation was canceled", RPCStatusCode.CANCELLED, b""))
    deadline = asyncio.get_running_loop().time() + 5
    assert await _has_poller(client, "q", WORKFLOW, deadline) is False
    assert await _has_poller(client, "q", WORKFLOW, deadline) is True
    assert answers.calls == 2


async def test_a_dropped_connection_past_the_deadline_is_raised() -> None:
    client, _ = _client(RPCError("operation was canceled", RPCStatusCode.CANCELLED, b""))
    past = asyncio.get_running_loop().time() - 1
    with pytest.raises(RPCError, match="canceled"):
        await _has_poller(client, "q", WORKFLOW, past)


async def test_a_real_fault_is_raised_at_once() -> None:
    client, _ = _client(RPCError("namespace not found", RPCStatusCode.NOT_FOUND, b""))
    deadline = asyncio.get_running_loop().time() + 5
    with pytest.raises(RPCError, match="namespace not found"):
        await _has_poller(client, "q", WORKFLOW, deadline)
