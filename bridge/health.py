"""The bridge's health, shared between the introduction thread and the HTTP server."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from contracts.health import POOL_FIELD
from contracts.health import BridgeStatus as Status


class HealthState:
    def __init__(
        self,
        agent_id: str,
        *,
        skills_version: Callable[[], int | None] | None = None,
        pool: bool = False,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.agent_id = agent_id
        # A warm pool VM waiting for its claim: `agent_id` is its slot, and /health says `"pool": true`.
        self._pool = pool
        self._clock = clock
        # Shown on /health only where a gateway is configured, so bridges without one answer exactly as before.
        self._skills_version = skills_version
        self._lock = threading.Lock()
        self._status: Status = "starting"
        self._reason = "introduction in progress"
        self._secrets_loaded = 0
        # When the agent last called its agent API (monotonic): /health says how long ago, for the lifecycle's idle
        # timeout. Seconds since, not a time of day, so the VM's clock does not matter.
        self._last_activity = self._clock()

    def set(self, status: Status, reason: str = "", *, secrets_loaded: int | None = None) -> None:
        with self._lock:
            self._status = status
            self._reason = reason
            if secrets_loaded is not None:
                self._secrets_loaded = secrets_loaded

    def become(self, agent_id: str, reason: str) -> None:
        """A pool VM was claimed: from now on /health answers for the agent, starting until its introduction ends."""
        with self._lock:
            self.agent_id = agent_id
            self._pool = False
            self._status = "starting"
            self._reason = reason
            self._secrets_loaded = 0

    def track_skills(self, skills_version: Callable[[], int | None]) -> None:
        """Show the skills version from now on (a claim brought the gateway)."""
        with self._lock:
            self._skills_version = skills_version

    def touch(self) -> None:
        """The agent used its agent API: it is not idle."""
        with self._lock:
            self._last_activity = self._clock()

    @property
    def status(self) -> Status:
        with self._lock:
            return self._status

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            body: dict[str, Any] = {
                "agent_id": self.agent_id,
                "status": self._status,
                "secrets_loaded": self._secrets_loaded,
                "reason": self._reason,
                "idle_s": round(self._clock() - self._last_activity, 1),
            }
            if self._pool:
                body[POOL_FIELD] = True
            skills_version = self._skills_version
        if skills_version is not None:
            body["skills_version"] = skills_version()
        return body
