"""A real local HTTP receiver of approval notices for the tests: it checks each request as a customer's would.

A `ThreadingHTTPServer` on 127.0.0.1 in a thread. Each path is one endpoint with its own answer script (statuses
answered in turn, the last one repeated) and, for the generic format, the signing secret it verifies with
(contracts/webhooks.py `verify_signature`: a fresh timestamp and a matching HMAC). Every request is kept as received.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from contracts.webhooks import DELIVERY_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, verify_signature


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    raw: bytes
    status: int  # what the receiver answered
    refused: str = ""  # why the signature check failed ("" when it held, or for unsigned Slack bodies)

    @property
    def body(self) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(self.raw)
        return parsed

    @property
    def delivery(self) -> str:
        return self.headers.get(DELIVERY_HEADER, "")


@dataclass
class Receiver:
    port: int
    secrets: dict[str, str] = field(default_factory=dict)
    scripts: dict[str, list[int]] = field(default_factory=dict)
    received: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def at(self, path: str, *, accepted_only: bool = False) -> list[Received]:
        with self.lock:
            return [r for r in self.received if r.path == path and (not accepted_only or r.status == 200)]

    def types(self, path: str) -> list[str]:
        """The notice types accepted at `path`, once each (retries dropped by their delivery id), in order."""
        seen: dict[str, str] = {}
        for r in self.at(path, accepted_only=True):
            seen.setdefault(r.delivery, r.body.get("type") or r.body.get("text", "").split(":")[0])
        return list(seen.values())

    def answer(self, path: str, raw: bytes, headers: dict[str, str]) -> int:
        with self.lock:
            script = self.scripts.get(path, [200])
            status = script.pop(0) if len(script) > 1 else script[0]
            refused = ""
            if path in self.secrets:
                refused = verify_signature(
                    self.secrets[path],
                    timestamp=headers.get(TIMESTAMP_HEADER, ""),
                    signature=headers.get(SIGNATURE_HEADER, ""),
                    body=raw,
                    now=time.time(),
                )
                if refused:
                    status = 401
            self.received.append(Received(path, headers, raw, status, refused))
            return status


@contextmanager
def running_receiver() -> Iterator[Receiver]:
    state: dict[str, Receiver] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            status = state["r"].answer(self.path, raw, dict(self.headers.items()))
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state["r"] = Receiver(port=server.server_address[1])
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state["r"]
    finally:
        server.shutdown()
        server.server_close()
