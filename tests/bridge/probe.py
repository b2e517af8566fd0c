"""A caller of the bridge's routes, standard library only, run as its own process: from another network namespace (a
different host, as far as the network goes) or as another user.

Usage: probe.py TARGET REQUESTS [--as-uid UID]

TARGET is `http://HOST:PORT` or `unix:/PATH`; REQUESTS a JSON list of `[method, path, body or null]`. Prints a JSON
list with, per request, `{"status": code, "body": ...}`, or `{"error": "<exception class> <errno name>"}` when the
connection itself fails. With `--as-uid`, the process drops to that uid and gid (no supplementary groups) before it
connects: the interpreter may live where that user cannot read, and the kernel records the new uid as the caller's.
"""

from __future__ import annotations

import argparse
import errno
import http.client
import json
import os
import socket
import sys
from typing import Any
from urllib.parse import urlsplit


class UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("bridge", timeout=timeout)
        self.unix_path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self.unix_path)
        except OSError:
            sock.close()
            raise
        self.sock = sock


def call(target: str, method: str, path: str, body: object, timeout: float) -> dict[str, Any]:
    if target.startswith("unix:"):
        conn: http.client.HTTPConnection = UnixConnection(target.removeprefix("unix:"), timeout)
    else:
        url = urlsplit(target)
        conn = http.client.HTTPConnection(url.hostname or "", url.port, timeout=timeout)
    data = None if body is None else json.dumps(body).encode()
    headers = {"Content-Type": "application/json"} if data is not None else {}
    try:
        conn.request(method, path, body=data, headers=headers)
        resp = conn.getresponse()
        raw = resp.read()
    except OSError as exc:
        name = errno.errorcode.get(exc.errno or 0, "") if exc.errno else ""
        return {"error": f"{type(exc).__name__} {name}".strip()}
    finally:
        conn.close()
    try:
        parsed: object = json.loads(raw) if raw else None
    except ValueError:
        parsed = raw.decode(errors="replace")
    return {"status": resp.status, "body": parsed}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("target")
    parser.add_argument("requests")
    parser.add_argument("--as-uid", type=int)
    parser.add_argument("--timeout", type=float, default=20.0)
    args = parser.parse_args()
    if args.as_uid is not None:
        os.setgroups([])
        os.setgid(args.as_uid)
        os.setuid(args.as_uid)
    answers = [call(args.target, m, p, b, args.timeout) for m, p, b in json.loads(args.requests)]
    json.dump(answers, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
