"""What every provider request goes through, in the order a real API front end applies it.

count the call -> slow_ms -> rate limit (429) -> token (401) -> storm_429 -> error_rate -> the handler ->
drop_after_create (create only, after the VM exists) -> rate-limit headers on whatever is answered.
"""

from __future__ import annotations

import asyncio
import json
import logging
import shutil
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import Receive, Scope, Send

from cloudsim.boot import Booter, agent_socket, kill_processes, stop_processes
from cloudsim.faults import Faults
from cloudsim.ratelimit import RateLimiter
from cloudsim.state import VM, SimState

log = logging.getLogger("cloudsim")

Handler = Callable[[Request], Awaitable[Response]]


class Sim:
    """Everything one simulator process holds."""

    def __init__(self, *, state_dir: Path, seed: int, boot_latency_s: float, tokens: dict[str, str]) -> None:
        self.state = SimState(state_dir=state_dir, seed=seed, boot_latency_s=boot_latency_s)
        self.faults = Faults(seed)
        self.limiter = RateLimiter()
        self.booter = Booter(self.state)
        self.tokens = tokens
        self._stopping: set[asyncio.Task[None]] = set()

    def vm_dir(self, provider: str, vm_id: int | str) -> Path:
        return self.state.state_dir / "vms" / f"{provider}-{vm_id}"

    def remove_vm(self, provider: str, vm_id: str, on_stopped: Callable[[], None] | None = None) -> VM | None:
        """Forget the VM now (the API answers 404 from here on) and stop its bridge in the background."""
        vm = self.state.pop_vm(provider, vm_id)
        if vm is None:
            return None
        self.booter.cancel(vm)
        task = asyncio.get_running_loop().create_task(self._stop_bridge(vm, on_stopped))
        self._stopping.add(task)
        task.add_done_callback(self._stopping.discard)
        return vm

    async def _stop_bridge(self, vm: VM, on_stopped: Callable[[], None] | None) -> None:
        if vm.bridge is not None:
            await asyncio.to_thread(kill_processes, [vm.bridge])
        # Its /run (a tmpfs on a real VM) is gone with it, agent socket included; the VM's logs stay for debugging.
        await asyncio.to_thread(shutil.rmtree, agent_socket(vm).parent, True)
        if on_stopped is not None:
            on_stopped()

    async def reset(self) -> None:
        with self.state.lock:
            vms = list(self.state.vms.values())
            self.state.vms.clear()
            self.state.live.clear()
            self.state.firewalls.clear()
        for vm in vms:
            self.booter.cancel(vm)
        await asyncio.to_thread(stop_processes, [vm.bridge for vm in vms if vm.bridge is not None])
        await self.drain()
        self.state.zero_counters()
        self.limiter.reset()

    async def drain(self) -> None:
        if self._stopping:
            await asyncio.gather(*list(self._stopping), return_exceptions=True)

    def stop_all_bridges(self) -> None:
        """Synchronous: used at shutdown, when no new VM can boot any more."""
        with self.state.lock:
            vms = list(self.state.vms.values())
        for vm in vms:
            self.booter.cancel(vm)
        stop_processes([vm.bridge for vm in vms if vm.bridge is not None])


class DroppedResponse(Response):
    """Promise a body, send part of it and stop: uvicorn closes the connection and the client never gets an answer.

    uvicorn logs "ASGI callable returned without completing response." for this; `QuietDrops` filters that line.
    """

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", b"4096")],
            }
        )
        await send({"type": "http.response.body", "body": b'{"', "more_body": True})


class QuietDrops(logging.Filter):
    """Drop uvicorn's error line for a response we cut short on purpose (we log our own INFO line instead)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage() != "ASGI callable returned without completing response."


class BadRequestBody(Exception):
    """The request body is not a JSON object."""


async def json_body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except ValueError as exc:
        raise BadRequestBody(str(exc)) from exc
    if not isinstance(body, dict):
        raise BadRequestBody("body must be a JSON object")
    return body


class ProviderAPI(ABC):
    """One provider's HTTP surface. Subclasses render resources and errors in that provider's exact shapes."""

    name: str
    prefix: str

    def __init__(self, sim: Sim) -> None:
        self.sim = sim

    @abstractmethod
    def routes(self) -> list[BaseRoute]: ...

    @abstractmethod
    def status(self, vm: VM) -> str:
        """The status word this provider's API reports for the VM."""

    @abstractmethod
    def error(self, status: int, message: str = "", code: str = "", details: Any = None) -> JSONResponse:
        """An error in this provider's format; `code` defaults from the status."""

    def rate_limited(self) -> JSONResponse:
        return self.error(429)

    def bad_body(self, exc: BadRequestBody) -> JSONResponse:
        return self.error(400, f"invalid JSON: {exc}")

    def dropped(self) -> Response:
        return self.error(504)

    def route(self, path: str, key: str, handler: Handler, methods: list[str]) -> Route:
        async def endpoint(request: Request) -> Response:
            return await self.handle(key, request, handler)

        return Route(self.prefix + path, endpoint, methods=methods)

    async def handle(self, key: str, request: Request, handler: Handler) -> Response:
        sim, provider = self.sim, self.name
        sim.state.count_call(provider, key)
        slow = sim.faults.slow_ms(provider, key)
        if slow > 0:
            sim.state.count_injected(provider, "slow")
            await asyncio.sleep(slow / 1000)
        token = _bearer(request)
        decision = sim.limiter.check(provider, token, request.client.host if request.client else "")
        if not decision.allowed:
            sim.state.count_rate_limited(provider)
            return _with_headers(self.rate_limited(), decision.headers)
        if token != sim.tokens[provider]:
            return _with_headers(self.error(401), decision.headers)
        storm = sim.faults.take_storm(provider, key)
        if storm is not None:
            sim.state.count_rate_limited(provider)
            sim.state.count_injected(provider, "storm_429")
            return _with_headers(self.rate_limited(), sim.limiter.storm_headers(provider, storm))
        failing = sim.faults.roll_error(provider, key)
        if failing is not None:
            sim.state.count_injected(provider, "error")
            return _with_headers(self.error(failing), decision.headers)
        try:
            response = await handler(request)
        except BadRequestBody as exc:
            response = self.bad_body(exc)
        if key == "create" and response.status_code < 300:
            mode = sim.faults.take_drop(provider)
            sim.faults.created(provider)
            if mode is not None:
                sim.state.count_injected(provider, "dropped")
            if mode == "close":
                log.info("%s create: dropping the connection after creating (fault)", provider)
                return DroppedResponse()
            if mode is not None:
                response = self.dropped()
        return _with_headers(response, decision.headers)


def _bearer(request: Request) -> str:
    value = request.headers.get("authorization", "")
    scheme, _, token = value.partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def _with_headers(response: Response, headers: dict[str, str]) -> Response:
    for name, value in headers.items():
        response.headers[name] = value
    return response
