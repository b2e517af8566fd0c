"""A broken agent for tests: it boots and serves /health, but never becomes healthy."""

from __future__ import annotations

import json
import os
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


class Handler(BaseHTTPRequestHandler):
    agent_id = ""

    def do_GET(self) -> None:
        body = json.dumps(
            {
                "agent_id": self.agent_id,
                "status": "unhealthy",
                "secrets_loaded": 0,
                "reason": "test agent that never becomes healthy",
            }
        ).encode()
        self.send_response(503)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def main() -> None:
    config = json.loads(Path(sys.argv[-1]).read_text())
    Handler.agent_id = config["agent_id"]
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    address = Path(config["address_file"])
    tmp = address.with_suffix(".tmp")
    tmp.write_text(f"http://127.0.0.1:{server.server_address[1]}")
    os.replace(tmp, address)
    server.serve_forever()


if __name__ == "__main__":
    main()
