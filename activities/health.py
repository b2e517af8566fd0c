"""Health checks: probe an agent bridge's `/health` until it is healthy or a deadline passes."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

import httpx
from temporalio import activity

from activities.errors import AgentCompromised, AgentUnhealthy
from activities.polling import PollSchedule
from contracts.health import POOL_FIELD, is_compromised
from contracts.models import HealthCheckRequest, HealthReport, HealthStatus, is_health_status
from contracts.pool import is_slot


def parse_health(agent_id: str, response: httpx.Response) -> HealthReport:
    """Read a bridge's answer; anything unexpected counts as unhealthy with a reason, never as an exception."""
    try:
        body = response.json()
    except ValueError:
        return HealthReport(agent_id, False, "invalid", reason=f"HTTP {response.status_code}, body is not JSON")
    if not isinstance(body, dict):
        return HealthReport(agent_id, False, "invalid", reason="health body is not a JSON object")
    said = body.get("status", "unknown")
    reason = str(body.get("reason", ""))[:300]
    if not is_health_status(said):
        return HealthReport(agent_id, False, "invalid", reason=f"health status {str(said)[:40]!r} is not one we know")
    status: HealthStatus = said
    if body.get("agent_id") != agent_id:
        return HealthReport(agent_id, False, "wrong-agent", reason="health endpoint answers for another agent")
    loaded = body.get("secrets_loaded", 0)
    loaded = loaded if isinstance(loaded, int) and not isinstance(loaded, bool) else 0
    # A pool VM waiting for its claim has no secrets yet, and answers for its slot: ready is all it can be.
    waiting_pool_vm = body.get(POOL_FIELD) is True and is_slot(agent_id)
    healthy = response.status_code == 200 and status == "healthy" and (loaded > 0 or waiting_pool_vm)
    idle = body.get("idle_s", -1.0)
    idle = float(idle) if isinstance(idle, int | float) and not isinstance(idle, bool) and idle >= 0 else -1.0
    return HealthReport(agent_id, healthy, status, secrets_loaded=loaded, reason=reason, idle_s=idle)


async def probe(client: httpx.AsyncClient, agent_id: str, address: str) -> HealthReport:
    try:
        response = await client.get(f"{address.rstrip('/')}/health")
    except httpx.HTTPError as exc:
        return HealthReport(agent_id, False, "unreachable", reason=type(exc).__name__)
    return parse_health(agent_id, response)


# A bridge healthy T seconds into the wait is seen by T + max(25 ms, T / 10): a warm pool VM, healthy some 50 ms after
# its claim, is seen within 25 ms of it; one that takes a second to start costs 26 probes, a 30 s boot 62 (`looks`).
# Probes go to the agent's own VM (about 1 ms each), not to a provider's API budget.
HEALTH_POLL_FRACTION = 0.1
HEALTH_POLL_FLOOR_S = 0.025


class HealthActivities:
    def __init__(self, *, timeout_s: float = 2.0, max_interval_s: float = 2.0) -> None:
        self.timeout = httpx.Timeout(timeout_s, connect=min(timeout_s, 1.0))
        self.max_interval_s = max_interval_s
        self.schedule = PollSchedule(HEALTH_POLL_FRACTION, min(HEALTH_POLL_FLOOR_S, max_interval_s), max_interval_s)
        self._client: httpx.AsyncClient | None = None

    def _http(self) -> httpx.AsyncClient:
        # One client for every probe, made on first use inside the worker's event loop: making one costs tens of ms
        # of CPU (its TLS context), more than a probe.
        if self._client is None:
            # No cap on connections: probes of many agents at once must not queue for a slot (bridges close each).
            self._client = httpx.AsyncClient(timeout=self.timeout, limits=httpx.Limits(max_connections=None))
        return self._client

    @activity.defn
    async def probe_agent(self, request: HealthCheckRequest) -> HealthReport:
        """One look at the agent's bridge: its health and how long its agent has been idle (the idle timeout)."""
        return await probe(self._http(), request.agent_id, request.address)

    @activity.defn
    async def wait_healthy(self, request: HealthCheckRequest) -> HealthReport:
        """Probe on `schedule` until healthy; fails (not retryable) at the deadline or when the agent is compromised.

        The deadline is absolute, so a retry on another worker after a crash keeps the original budget.
        """
        checks = 0
        started = time.monotonic()
        last = HealthReport(request.agent_id, False, "unchecked")
        client = self._http()
        while True:
            checks += 1
            last = await probe(client, request.agent_id, request.address)
            last.checks = checks
            if last.healthy:
                return last
            # Its bootstrap credential was refused as already used: waiting longer cannot help.
            if is_compromised(last):
                raise AgentCompromised(f"agent {request.agent_id}: {last.reason}")
            activity.heartbeat(checks)
            remaining = (request.deadline - datetime.now(UTC)).total_seconds()
            if remaining <= 0:
                detail = f"{last.status}: {last.reason}" if last.reason else last.status
                raise AgentUnhealthy(
                    f"agent {request.agent_id} not healthy by its deadline after {checks} checks (last {detail})"
                )
            await asyncio.sleep(min(self.schedule.delay(time.monotonic() - started), remaining))
