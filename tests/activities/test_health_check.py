"""wait_healthy against a real HTTP server: a compromised bridge fails the check at once, in either dialect."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from temporalio.testing import ActivityEnvironment

from activities.errors import AgentCompromised
from activities.health import HealthActivities
from contracts.models import HealthCheckRequest


def _serve(body: dict[str, object]) -> tuple[ThreadingHTTPServer, str]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            data = json.dumps(body).encode()
            self.send_response(503)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


@pytest.fixture
def bridge(request: pytest.FixtureRequest) -> Iterator[str]:
    server, url = _serve(request.param)
    yield url
    server.shutdown()
    server.server_close()


NEW = {"agent_id": "a1", "status": "compromised", "secrets_loaded": 0, "reason": "bootstrap credential rejected: x"}
OLD = {"agent_id": "a1", "status": "unhealthy", "secrets_loaded": 0, "reason": "bootstrap credential rejected: x"}


@pytest.mark.parametrize("bridge", [NEW, OLD], ids=["status", "legacy-reason"], indirect=True)
async def test_a_compromised_bridge_fails_the_health_check_without_waiting_for_the_deadline(bridge: str) -> None:
    request = HealthCheckRequest("a1", bridge, datetime.now(UTC) + timedelta(minutes=5))
    started = time.monotonic()
    with pytest.raises(AgentCompromised, match="bootstrap credential rejected"):
        await ActivityEnvironment().run(HealthActivities().wait_healthy, request)
    assert time.monotonic() - started < 30  # the first probe decides; the 5-minute deadline never comes into it
