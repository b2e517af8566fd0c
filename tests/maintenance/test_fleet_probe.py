"""The fleet monitor's probing: reports in the agents' order whatever order answers come in, progress heartbeats, and
the latency summary that goes into the result instead of one latency per agent."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any, cast

import pytest
from temporalio.testing import ActivityEnvironment

from activities.maintenance import fleet
from activities.maintenance.fleet import FleetActivities, _summarise
from devstack import free_port
from store import AgentRecord
from workflows.maintenance_models import FleetHealthInput, FleetHealthResult
from workflows.models import AgentState

NOW = datetime.now(UTC)


async def _answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """`GET /<agent_id>/health`: agents whose id ends in an odd digit answer later and unhealthy."""
    request = await reader.readuntil(b"\r\n\r\n")
    agent_id = request.split(b" ", 2)[1].decode().strip("/").split("/")[0]
    late = int(agent_id[-1]) % 2 == 1
    if late:
        await asyncio.sleep(0.05)  # answers out of order; no race rests on it
    body = json.dumps({"agent_id": agent_id, "status": "degraded" if late else "healthy", "secrets_loaded": 1})
    status = "503 Service Unavailable" if late else "200 OK"
    head = f"HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {len(body)}\r\n\r\n"
    writer.write(head.encode() + body.encode())
    await writer.drain()
    writer.close()


@pytest.fixture
async def fleet_server() -> AsyncIterator[str]:
    server = await asyncio.start_server(_answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        yield f"http://127.0.0.1:{port}"


def _agent(agent_id: str, address: str) -> AgentRecord:
    return AgentRecord(
        agent_id=agent_id,
        account_id="acme",
        name="n",
        provider="local",
        region="local",
        size="small",
        state=AgentState.RUNNING,
        vm_id="vm",
        address=address,
        health="healthy",
        created_at=NOW,
        updated_at=NOW,
    )


@pytest.mark.asyncio(loop_scope="session")
async def test_reports_follow_the_agents_order_and_heartbeats_count_progress(
    fleet_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fleet, "HEARTBEAT_EVERY_S", 0.0)
    agents = [_agent(f"a{i}", f"{fleet_server}/a{i}") for i in range(12)]
    agents.insert(5, _agent("gone", f"http://127.0.0.1:{free_port()}"))  # nothing listens there
    activities = FleetActivities(registry=cast(Any, None), temporal=cast(Any, None))
    beats: list[int] = []
    env = ActivityEnvironment()
    env.on_heartbeat = lambda *details: beats.append(details[0])

    async def probe_all() -> tuple[list[Any], list[float]]:
        return await activities._probe_all(agents, FleetHealthInput(concurrency=4, timeout_s=2.0))

    reports, latencies = await env.run(probe_all)

    assert [r.agent_id for r in reports] == [a.agent_id for a in agents]
    expected = {a.agent_id: int(a.agent_id[-1]) % 2 == 0 for a in agents if a.agent_id != "gone"}
    assert {r.agent_id: r.healthy for r in reports if r.agent_id != "gone"} == expected
    assert reports[5].status == "unreachable"
    assert len(latencies) == len(agents)
    assert beats and beats == sorted(beats) and beats[-1] <= len(agents)


def test_latency_summary_is_nearest_rank_in_ms() -> None:
    result = FleetHealthResult()
    _summarise(result, [ms / 1000 for ms in range(100, 0, -1)])
    assert (result.probe_p50_ms, result.probe_p95_ms, result.probe_p99_ms, result.probe_max_ms) == (50, 95, 99, 100)
    empty = FleetHealthResult()
    _summarise(empty, [])
    assert empty.probe_max_ms == 0.0
