"""The bridge's orchestrator-facing listener: `GET /health`, and on a warm pool VM `POST /claim`. Standard library only.

This is the one address the bridge opens to a network: on a VM, every interface at port 8787, where the orchestrator's
health check and the fleet monitor probe it. It answers `GET /health` and 404 to every other method and path; the
agent's own API (tool authorization) is never served here but on a Unix socket only the agent's user can use
(`bridge.agent_api`). `JSONHandler` is the small HTTP base both share.

A pool VM's bridge also takes `POST /claim` with no body: a wake-up, not a channel. It tells nothing and carries
nothing (the claim itself is in Vault, readable by this VM's pool token only); it only makes the bridge look for its
claim now instead of at its next poll, and the bridge reads Vault at most a few times a second however often it is
poked. Any body is refused (400), and so is every other method or path.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from bridge.health import HealthState

MAX_BODY_BYTES = 64 * 1024

log = logging.getLogger(__name__)


class JSONHandler(BaseHTTPRequestHandler):
    """JSON answers, one request per connection, and every method the base class does not know answered by
    `unknown_method` (404 by default) instead of its 501 page."""

    def __getattr__(self, name: str) -> Callable[[], None]:
        # BaseHTTPRequestHandler dispatches to `do_<METHOD>`: any method without its own handler lands here.
        if name.startswith("do_"):
            return self.unknown_method
        raise AttributeError(name)

    def unknown_method(self) -> None:
        self.not_found()

    def not_found(self) -> None:
        self.discard_body()
        self.send_json(404, {"error": "not found"})

    def discard_body(self) -> None:
        """Read a small body no route wants before answering: closing with unread data would reset the connection
        under the caller's read of the answer."""
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            return
        if 0 < length <= MAX_BODY_BYTES:
            self.rfile.read(length)

    def send_json(self, code: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.close_connection = True
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        log.debug("%s " + format, self.address_string(), *args)


class HealthServer(ThreadingHTTPServer):
    """The orchestrator-facing listener: `GET /health`, and `POST /claim` where `on_claim` is given (a pool VM)."""

    daemon_threads = True

    def __init__(self, host: str, port: int, state: HealthState, *, on_claim: Callable[[], None] | None = None) -> None:
        self.state = state
        self.on_claim = on_claim
        super().__init__((host, port), _HealthHandler)

    @property
    def base_url(self) -> str:
        host, port = self.server_address[:2]
        host = str(host)
        if host in ("0.0.0.0", "::", ""):  # noqa: S104 - mapping a wildcard bind to a reachable address
            host = "127.0.0.1"
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{port}"


class _HealthHandler(JSONHandler):
    server: HealthServer

    def do_GET(self) -> None:
        if self.path.split("?", 1)[0] != "/health":
            self.not_found()
            return
        body = self.server.state.snapshot()
        self.send_json(200 if body["status"] == "healthy" else 503, body)

    def do_POST(self) -> None:
        on_claim = self.server.on_claim
        if self.path != "/claim" or on_claim is None:
            self.not_found()
            return
        if self.headers.get("Transfer-Encoding") or self.headers.get("Content-Length", "0") != "0":
            self.discard_body()
            self.send_json(400, {"error": "POST /claim takes no body"})
            return
        on_claim()  # sets an event: no Vault call on this thread
        self.send_json(202, {})


def write_address_file(path: str | Path, url: str) -> None:
    """Write atomically, so a reader sees either nothing or the whole URL."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(url)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
