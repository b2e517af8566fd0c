"""The simulated fleet of the fleet health bench: one process answering `/health` for every agent.

    .venv/bin/python bench/_fleet_server.py --port P --agents N [--unhealthy K] [--flapping F]

Agent i lives at `http://<fleet_ip(i)>:P`, a loopback address of its own, so the worker opens one connection per agent
as it would to real VMs (no keep-alive across agents). The server listens on every address but answers loopback peers
only, and tells agents apart by the local address each connection reached. A minimal asyncio protocol rather than a
web framework, so the simulated fleet answers fast and the bench measures the worker, not the fleet.

Agents spread evenly over the fleet: K answer 503 "unhealthy" always; F flap, unhealthy in every other 30 s window,
so every run of the monitor has health changes to signal.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import json
import signal
import sys
import time

FLEET_NET = ipaddress.IPv4Address("127.10.0.0")
FLAP_PERIOD_S = 30


def fleet_ip(index: int) -> str:
    return str(FLEET_NET + index)


def fleet_agent_id(index: int) -> str:
    return f"fleet-{index:05d}"


def spread(count: int, agents: int, *, offset: int = 0) -> set[int]:
    """`count` indices spread evenly over `agents`, shifted by `offset` so two sets rarely overlap."""
    if count <= 0:
        return set()
    step = max(1, agents // count)
    return {(offset + k * step) % agents for k in range(min(count, agents))}


def unhealthy_sets(agents: int, unhealthy: int, flapping: int) -> tuple[set[int], set[int]]:
    down = spread(unhealthy, agents)
    flap = spread(flapping, agents, offset=max(1, agents // max(1, 2 * flapping))) - down
    return down, flap


class HealthProtocol(asyncio.Protocol):
    def __init__(self, server: FleetServer) -> None:
        self.server = server
        self.buffer = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        peer = transport.get_extra_info("peername")
        if not peer or not ipaddress.ip_address(peer[0]).is_loopback:
            transport.abort()
            return
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        if self.transport is None:
            return
        self.buffer += data
        if b"\r\n\r\n" not in self.buffer:
            return
        local = self.transport.get_extra_info("sockname")[0]
        self.transport.write(self.server.answer(local, self.buffer.split(b" ", 2)[1]))
        self.transport.close()


class FleetServer:
    def __init__(self, agents: int, unhealthy: int, flapping: int) -> None:
        self.agents = agents
        self.down, self.flap = unhealthy_sets(agents, unhealthy, flapping)
        self.served = 0

    def answer(self, local_ip: str, path: bytes) -> bytes:
        self.served += 1
        index = int(ipaddress.IPv4Address(local_ip)) - int(FLEET_NET)
        if path != b"/health" or not 0 <= index < self.agents:
            return _response(404, {"error": "not found"})
        flapped_down = index in self.flap and int(time.time() // FLAP_PERIOD_S) % 2 == 1
        if index in self.down or flapped_down:
            body = {
                "agent_id": fleet_agent_id(index),
                "status": "unhealthy",
                "reason": "simulated",
                "secrets_loaded": 1,
            }
            return _response(503, body)
        return _response(200, {"agent_id": fleet_agent_id(index), "status": "healthy", "secrets_loaded": 3})


def _response(code: int, body: dict[str, object]) -> bytes:
    payload = json.dumps(body).encode()
    reason = {200: "OK", 404: "Not Found", 503: "Service Unavailable"}[code]
    head = (
        f"HTTP/1.1 {code} {reason}\r\ncontent-type: application/json\r\ncontent-length: {len(payload)}\r\n"
        "connection: close\r\n\r\n"
    )
    return head.encode() + payload


async def serve(port: int, agents: int, unhealthy: int, flapping: int) -> None:
    fleet = FleetServer(agents, unhealthy, flapping)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: HealthProtocol(fleet), "0.0.0.0", port, backlog=4096)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(f"ready {port}", flush=True)
    async with server:
        await stop.wait()
    print(f"served {fleet.served}", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--agents", type=int, required=True)
    parser.add_argument("--unhealthy", type=int, default=0)
    parser.add_argument("--flapping", type=int, default=0)
    args = parser.parse_args()
    asyncio.run(serve(args.port, args.agents, args.unhealthy, args.flapping))
    return 0


if __name__ == "__main__":
    sys.exit(main())
