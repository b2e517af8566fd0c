"""Reaching a bridge the way outsiders would: from another host (a network namespace joined by a veth pair), as
another user, and what a process listens on, read from the kernel's own tables."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import subprocess
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

PROBE = Path(__file__).with_name("probe.py")
Request = tuple[str, str, object]


def agent_api(socket_path: str | Path, *, timeout: float = 60) -> httpx.AsyncClient:
    """An HTTP client of the bridge's agent API, as the agent's own process uses it: over the Unix socket."""
    return httpx.AsyncClient(
        transport=httpx.AsyncHTTPTransport(uds=str(socket_path)), base_url="http://bridge", timeout=timeout
    )


def privileged(what: str) -> None:
    """Skip a test that needs root on a developer machine; under CI (`CI=true`) it must run, so fail instead."""
    reason = f"needs root to {what}"
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason}, and CI must prove it")
    pytest.skip(reason)


def probe(target: str, requests: Sequence[Request], *, prefix: Sequence[str] = (), as_uid: int | None = None) -> Any:
    """Run tests/bridge/probe.py (standard library only, isolated mode) behind `prefix`; its answers, parsed."""
    argv = [*prefix, sys.executable, "-I", str(PROBE), target, json.dumps(list(requests))]
    if as_uid is not None:
        argv += ["--as-uid", str(as_uid)]
    done = subprocess.run(argv, capture_output=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    return json.loads(done.stdout)


@dataclass
class OtherHost:
    """A network namespace with one veth link to this machine: it reaches us only at `host_ip`, across the link."""

    holder: subprocess.Popen[bytes]
    host_ip: str
    own_ip: str
    link: str
    _done: bool = field(default=False, repr=False)

    def probe(self, target: str, requests: Sequence[Request]) -> Any:
        return probe(target, requests, prefix=["nsenter", "-t", str(self.holder.pid), "-n"])

    def close(self) -> None:
        if self._done:
            return
        self._done = True
        # The namespace lives as long as its holder; when the holder exits, the kernel removes the namespace and the
        # veth pair with it (so does pytest dying: the holder's stdin closes).
        with contextlib.suppress(OSError):
            if self.holder.stdin is not None:
                self.holder.stdin.close()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.holder.wait(10)
        if self.holder.poll() is None:
            self.holder.kill()
            self.holder.wait(10)
        subprocess.run(["ip", "link", "del", self.link], capture_output=True, check=False)


def _ip(*args: str, netns_pid: int | None = None) -> None:
    prefix = ["nsenter", "-t", str(netns_pid), "-n"] if netns_pid is not None else []
    done = subprocess.run([*prefix, "ip", *args], capture_output=True, timeout=30, check=False)
    if done.returncode != 0:
        raise OSError(f"ip {' '.join(args)}: {done.stderr.decode(errors='replace').strip()}")


@contextlib.contextmanager
def other_host() -> Iterator[OtherHost]:
    """Another host, as far as the network goes.

    Linux routes all of 127/8 to `lo`, so a second loopback address is not another machine. A process in its own
    network namespace has its own interfaces, loopback and routes, and reaches this machine only across a veth pair,
    at `host_ip`, as a machine on a VM's network reaches the VM's public address. Addresses come from 198.18.0.0/15
    (reserved for network tests), one random /30 per use. Needs root (namespaces, links) and iproute2.
    """
    if os.geteuid() != 0:
        privileged("make a network namespace")
    missing = [tool for tool in ("unshare", "nsenter", "ip") if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"needs {', '.join(missing)}")
    holder = subprocess.Popen(
        ["unshare", "--net", "--", sys.executable, "-I", "-c", "import sys; print('up', flush=True); sys.stdin.read()"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert holder.stdout is not None and holder.stderr is not None
    if holder.stdout.readline().strip() != b"up":  # printed only once the new namespace exists
        holder.wait(10)
        pytest.skip(f"cannot make a network namespace: {holder.stderr.read().decode(errors='replace').strip()}")
    block = secrets.randbelow(1 << 15)  # a /30 inside 198.18.0.0/15
    base = (198 << 24) | (18 << 16) | (block << 2)
    host_ip, own_ip = (".".join(str(((base + n) >> s) & 255) for s in (24, 16, 8, 0)) for n in (1, 2))
    suffix = secrets.token_hex(4)
    host = OtherHost(holder=holder, host_ip=host_ip, own_ip=own_ip, link=f"lbh{suffix}")
    try:
        _ip("link", "add", host.link, "type", "veth", "peer", "name", f"lbn{suffix}", "netns", str(holder.pid))
        _ip("addr", "add", f"{host_ip}/30", "dev", host.link)
        _ip("link", "set", host.link, "up")
        _ip("addr", "add", f"{own_ip}/30", "dev", f"lbn{suffix}", netns_pid=holder.pid)
        _ip("link", "set", f"lbn{suffix}", "up", netns_pid=holder.pid)
        _ip("link", "set", "lo", "up", netns_pid=holder.pid)
        yield host
    finally:
        host.close()


@dataclass(frozen=True)
class Listeners:
    tcp: frozenset[tuple[str, int]]
    unix: frozenset[str]


def _socket_inodes(pid: int) -> set[int]:
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(OSError):
            target = os.readlink(fd)
            if target.startswith("socket:["):
                inodes.add(int(target[8:-1]))
    return inodes


def _address(hex_address: str) -> tuple[str, int]:
    host, port = hex_address.split(":")
    raw = bytes.fromhex(host)
    if len(raw) == 4:
        ip = ".".join(str(b) for b in reversed(raw))
    else:  # IPv6: four 32-bit words, each in host (little-endian) order
        words = b"".join(raw[i : i + 4][::-1] for i in range(0, 16, 4))
        ip = ":".join(words[i : i + 2].hex() for i in range(0, 16, 2))
    return ip, int(port, 16)


def listeners(pid: int) -> Listeners:
    """Every TCP and Unix socket the process `pid` listens on, from /proc (the kernel's view, not the code's)."""
    mine = _socket_inodes(pid)
    tcp = set()
    for table in ("tcp", "tcp6"):
        for line in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and int(fields[9]) in mine:  # 0A: LISTEN
                tcp.add(_address(fields[1]))
    unix = set()
    for line in Path(f"/proc/{pid}/net/unix").read_text().splitlines()[1:]:
        fields = line.split()
        # Flags 00010000: __SO_ACCEPTCON, a listening socket.
        if int(fields[3], 16) & 0x10000 and int(fields[6]) in mine:
            unix.add(fields[7] if len(fields) > 7 else "")
    return Listeners(frozenset(tcp), frozenset(unix))
