"""The bridge's health, shared between the introduction thread and the HTTP server."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from contracts.health import BridgeStatus as Status


class HealthState:
    def __init__(self, agent_id: str, *, skills_version: Callable[[], int | None] | None = None) -> None:
        self.agent_id = agent_id
        # Shown on /health only where a gateway is configured, so bridges without one answer exactly as before.
        self._skills_version = skills_version
        self._lock = threading.Lock()
        self._status: Status = "starting"
        self._reason = "introduction in progress"
        self._secrets_loaded = 0

    def set(self, status: Status, reason: str = "", *, secrets_loaded: int | None = None) -> None:
        with self._lock:
            self._status = status
            self._reason = reason
            if secrets_loaded is not None:
                self._secrets_loaded = secrets_loaded

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
            }
        if self._skills_version is not None:
            body["skills_version"] = self._skills_version()
        return body
