"""The bridge's idle time (issue 14, lifetimes): /health says how long ago the agent last used its agent API.

In-process, with the bridge's own classes: a clock the test moves, and an agent API server whose requests are counted.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import httpx

from bridge.agent_api import AgentAPIServer
from bridge.health import HealthState
from bridge.tools import Authorizer, SkillsState


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_idle_counts_from_the_last_agent_api_request() -> None:
    clock = Clock()
    state = HealthState("a-1", clock=clock)
    assert state.snapshot()["idle_s"] == 0.0
    clock.now += 61.25
    assert state.snapshot()["idle_s"] == 61.2  # rounded to tenths
    state.touch()
    assert state.snapshot()["idle_s"] == 0.0
    clock.now += 5
    assert state.snapshot()["idle_s"] == 5.0


def test_every_request_of_the_agent_user_counts_as_activity(tmp_path: Path) -> None:
    """Refused or not, a request from the agent's own user is activity; the server tells the health state."""
    seen: list[int] = []
    server = AgentAPIServer(
        tmp_path / "agent.sock",
        agent_uid=os.geteuid(),
        authorizer=Authorizer(None, SkillsState(), wait_s=0.1),
        on_request=lambda: seen.append(1),
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        with httpx.Client(transport=httpx.HTTPTransport(uds=str(server.path)), base_url="http://bridge") as client:
            assert client.post("/tools/web.search/authorize", json={}).status_code == 403  # no tool enabled
            assert client.get("/nothing").status_code == 404
        assert len(seen) == 2
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
