"""What starting a development stack can fail with."""

from __future__ import annotations

__all__ = ["DevStackError", "PortInUse"]


class DevStackError(RuntimeError):
    """A development server could not start or did not become ready; the message says which and shows its log tail."""


class PortInUse(DevStackError):
    """A server could not listen: another process holds `port` (None when the server did not say which).

    `chosen` is False when the port was the caller's (or follows from it): starting again cannot help then."""

    def __init__(self, name: str, port: int | None, *, chosen: bool) -> None:
        where = f"port {port}" if port else "a port it needs"
        super().__init__(f"{name} cannot listen: {where} is in use by another process")
        self.name = name
        self.port = port
        self.chosen = chosen
