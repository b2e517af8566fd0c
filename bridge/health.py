"""The bridge's health, shared between the introduction thread and the HTTP server."""

from __future__ import annotations

import threading
from typing import Any, Literal

Status = Literal["starting", "healthy", "unhealthy"]


class HealthState:
    def __init__(self, agent_id: str) -> None:
        self.agent_id = agent_id
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
            return {
                "agent_id": self.agent_id,
                "status": self._status,
                "secrets_loaded": self._secrets_loaded,
                "reason": self._reason,
            }
