"""The bridge's HTTP surface: GET /health and POST /tools/{tool}/authorize. Standard library only.

Both share one listen address. /tools/... answers for this agent's tools, so on a real VM the bridge should listen on
loopback (or a socket only the agent runtime reaches) with /health exposed to the prober separately; splitting the two
listeners is a later issue.
"""

from __future__ import annotations

import json
import logging
import os
import re
import tempfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from bridge.health import HealthState
from bridge.tools import Authorizer, SkillsState, refused

MAX_BODY_BYTES = 64 * 1024
_AUTHORIZE = re.compile(r"^/tools/([^/]+)/authorize$")

log = logging.getLogger(__name__)


class HealthServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, host: str, port: int, state: HealthState, authorizer: Authorizer | None = None) -> None:
        self.state = state
        # Without one, no tool is enabled.
        self.authorizer = authorizer or Authorizer(None, SkillsState())
        super().__init__((host, port), _Handler)

    @property
    def base_url(self) -> str:
        host, port = self.server_address[:2]
        host = str(host)
        if host in ("0.0.0.0", "::", ""):  # noqa: S104 - mapping a wildcard bind to a reachable address
            host = "127.0.0.1"
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{port}"


class _Handler(BaseHTTPRequestHandler):
    server: HealthServer

    def do_GET(self) -> None:
        if self.path.split("?", 1)[0] != "/health":
            self._send(404, {"error": "not found"})
            return
        body = self.server.state.snapshot()
        self._send(200 if body["status"] == "healthy" else 503, body)

    def do_POST(self) -> None:
        path, _, query = self.path.partition("?")
        match = _AUTHORIZE.fullmatch(path)
        if match is None:
            self._send(404, {"error": "not found"})
            return
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if not 0 <= length <= MAX_BODY_BYTES:
            self._send(*refused(f"body: must be a JSON object of at most {MAX_BODY_BYTES} bytes", 400))
            return
        try:
            body = json.loads(self.rfile.read(length) or b"{}")
        except ValueError:
            body = None
        if not isinstance(body, dict):
            self._send(*refused("body: must be a JSON object", 400))
            return
        wait = parse_qs(query).get("wait", [""])[0]
        try:
            wait_s = float(wait) if wait else None
        except ValueError:
            self._send(*refused("wait: must be a number of seconds", 400))
            return
        self._send(*self.server.authorizer.authorize(match.group(1), body, wait_s))

    def _send(self, code: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        log.debug("%s " + format, self.address_string(), *args)


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
