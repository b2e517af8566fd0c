"""`--record FILE`: every provider request and its answer, one JSON object per line, for the contract tests.

tests/cloud_contract checks each line against the provider's published OpenAPI document: the request the real adapter
sent (path, query, body) and the answer cloudsim gave (status, headers, body). The line is written before the answer
ends for the client (its headers are held back until its body), so a client that has its answer finds the line
already in the file. A response cut short on purpose (a dropped create) is written when the application returns,
with `complete: false`.

The Authorization header is never written, and a `user_data` string in a request body is replaced by a placeholder
(it carries a bootstrap credential); the file is created 0600.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

REDACTED = "cmVkYWN0ZWQ="  # base64 of "redacted": still a valid value for every provider's `user_data`


class Recorder:
    def __init__(self, app: ASGIApp, path: Path) -> None:
        self.app = app
        self.path = path
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith("/_sim/"):
            await self.app(scope, receive, send)
            return
        request_body = bytearray()
        response: dict[str, Any] = {"status": 0, "headers": [], "body": bytearray()}
        written = False

        async def receiving() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                request_body.extend(message.get("body", b""))
            return message

        held: list[Message] = []

        async def sending(message: Message) -> None:
            nonlocal written
            if message["type"] == "http.response.start":
                response["status"] = message["status"]
                response["headers"] = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in message["headers"]]
                # Held back until the body: a 204's headers alone end the answer for the client.
                held.append(message)
                return
            if message["type"] == "http.response.body":
                response["body"].extend(message.get("body", b""))
                if not message.get("more_body", False):
                    self._write(scope, bytes(request_body), response, complete=True)
                    written = True
            while held:
                await send(held.pop())
            await send(message)

        try:
            await self.app(scope, receiving, sending)
        finally:
            if not written:
                self._write(scope, bytes(request_body), response, complete=False)

    def _write(self, scope: Scope, request_body: bytes, response: dict[str, Any], *, complete: bool) -> None:
        headers = [
            (k.decode("latin-1").lower(), v.decode("latin-1"))
            for k, v in scope["headers"]
            if k.lower() != b"authorization"
        ]
        line = {
            "method": scope["method"],
            "path": scope["path"],
            "query": scope["query_string"].decode("latin-1"),
            "request_headers": headers,
            "request_body": _redacted(request_body),
            "status": response["status"],
            "headers": response["headers"],
            "body": bytes(response["body"]).decode("utf-8", "replace"),
            "complete": complete,
        }
        with open(self.path, "a", encoding="utf-8") as out:
            out.write(json.dumps(line) + "\n")


def _redacted(body: bytes) -> str:
    text = body.decode("utf-8", "replace")
    try:
        data = json.loads(text)
    except ValueError:
        return text
    if isinstance(data, dict) and isinstance(data.get("user_data"), str):
        data["user_data"] = REDACTED
        return json.dumps(data)
    return text
