"""Loopback ports for development servers: picked, reserved, and picked again when another process takes one.

A server started with a port we picked binds it a moment later, in another process. A port that was merely free
when we looked (bind to 0, close) can be handed out again meanwhile: to any socket bound to port 0 and to any
outgoing connection's local end, all drawn from the same ephemeral range. That lost race was the "address already
in use" of tests/devstack/test_dev_budget.py. Two measures (the first is what Temporal's dev server and SDK do):

- reserve: the picked port is left in TIME_WAIT (a connection to it, closed by the listening side first). While
  it is, the kernel hands it to no bind(0) and no outgoing connection, yet a server setting SO_REUSEADDR (every Go
  server, uvicorn, asyncio) binds it explicitly. A plain bind without SO_REUSEADDR is refused, which the tests use
  to see the reservation.
- retry: a starter that picked its ports and sees its server report "address already in use" (someone bound that
  very number explicitly) starts it again on new ones. Readiness is checked on the process itself (its own
  listening sockets, or an answer only it can give), so a server that lost its port is never mistaken for ready
  because another one answers there.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import socket
import sys
from collections.abc import Callable, Collection
from pathlib import Path
from typing import TypeVar

from devstack.errors import DevStackError, PortInUse

__all__ = ["START_ATTEMPTS", "free_port", "free_port_pair", "listening_ports", "port_in_use", "retrying"]

log = logging.getLogger("lobstack.devstack")
T = TypeVar("T")

# How often a starter tries again after another process took a port it had picked.
START_ATTEMPTS = 5


def _reserve(port: int) -> int:
    """Bind 127.0.0.1:`port` (0: any), leave it in TIME_WAIT, return the number; OSError if it is taken."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        # The TIME_WAIT socket inherits SO_REUSEADDR from here, which lets the server's own SO_REUSEADDR bind pass.
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", port))
        listener.listen(1)
        port = int(listener.getsockname()[1])
        if sys.platform.startswith("linux"):  # elsewhere bind(0) hands ports out in sequence, not at random
            with socket.create_connection(("127.0.0.1", port), timeout=5) as client:
                accepted, _ = listener.accept()
                accepted.close()  # the listening side closes first: its end (our port) is the one in TIME_WAIT
                client.recv(1)  # its FIN has arrived; closing ours completes the close
    return port


def free_port() -> int:
    """A loopback port for a server to bind in a moment, reserved against every bind(0) and outgoing connection
    while it is in TIME_WAIT (60 s on Linux); the server must set SO_REUSEADDR, as Go servers, uvicorn and asyncio
    do. Also the way to name a port nothing listens on (a connection to it is refused)."""
    return _reserve(0)


def free_port_pair() -> int:
    """A reserved port P whose P+1 is reserved too: OpenBao's dev mode puts its cluster listener on P+1."""
    for _ in range(100):
        port = free_port()
        if port < 65535:
            with contextlib.suppress(OSError):
                _reserve(port + 1)
                return port
    raise DevStackError("no two consecutive free loopback ports found")


def listening_ports(pid: int) -> set[int] | None:
    """The TCP ports process `pid` itself listens on, from /proc (Linux); None where /proc does not tell."""
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return None
    sockets = set()
    for fd in fds:
        with contextlib.suppress(OSError):  # an fd closed meanwhile
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
            if target.startswith("socket:["):
                sockets.add(target[8:-1])
    ports: set[int] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) > 9 and fields[3] == "0A" and fields[9] in sockets:  # 0A: LISTEN
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


_IN_USE = re.compile(r"address already in use", re.IGNORECASE)
_IN_USE_PORT = re.compile(r":(\d+): bind: address already in use", re.IGNORECASE)


def port_in_use(name: str, output: str, fixed: Collection[int]) -> PortInUse | None:
    """PortInUse when server `name`'s `output` says it could not bind (Go: `listen tcp HOST:PORT: bind: address
    already in use`); `fixed` are the ports the caller asked for, which a new start would not change."""
    if not _IN_USE.search(output):
        return None
    found = _IN_USE_PORT.search(output)
    port = int(found.group(1)) if found else None
    chosen = port not in fixed if port is not None else not fixed
    return PortInUse(name, port, chosen=chosen)


def retrying(start: Callable[[], T], what: str) -> T:
    """Run `start` (which picks its ports afresh each time) until its server listens; a port lost to another process
    costs one more start, up to START_ATTEMPTS. A port the caller fixed is not retried."""
    for attempt in range(1, START_ATTEMPTS + 1):
        try:
            return start()
        except PortInUse as lost:
            if not lost.chosen or attempt == START_ATTEMPTS:
                raise
            log.info("%s: port %s was taken by another process; starting again (attempt %d)", what, lost.port, attempt)
    raise AssertionError("unreachable")
