"""The ASGI application: the three provider APIs and the control endpoint on one port."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from cloudsim.catalog_api import catalog_routes
from cloudsim.control import control_routes
from cloudsim.digitalocean import DigitalOceanAPI
from cloudsim.hetzner import HetznerAPI
from cloudsim.pipeline import ProviderAPI, Sim
from cloudsim.recording import Recorder
from cloudsim.vultr import VultrAPI


def build_app(sim: Sim, *, record: Path | None = None) -> Starlette:
    """`record`: a file to append every provider request and its answer to (contract tests only)."""
    apis: dict[str, ProviderAPI] = {
        "hetzner": HetznerAPI(sim),
        "digitalocean": DigitalOceanAPI(sim),
        "vultr": VultrAPI(sim),
    }
    routes = [route for api in apis.values() for route in api.routes()]
    routes += catalog_routes(apis)
    routes += control_routes(sim, apis)

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        yield
        # Shutdown (SIGTERM/SIGINT through uvicorn): no VM outlives the simulator, and no bridge either.
        await sim.drain()
        sim.stop_all_bridges()

    async def not_found(request: Request, _exc: Exception) -> Response:
        # An unknown path under a provider prefix gets that provider's 404 shape.
        for api in apis.values():
            if request.url.path.startswith(api.prefix):
                return api.error(404, "not found")
        return JSONResponse({"error": "not found"}, status_code=404)

    middleware = [Middleware(Recorder, path=record)] if record is not None else []
    return Starlette(routes=routes, lifespan=lifespan, exception_handlers={404: not_found}, middleware=middleware)


def make_sim(*, state_dir: Path, seed: int, boot_latency_s: float, tokens: dict[str, str]) -> Sim:
    state_dir.mkdir(parents=True, exist_ok=True)
    return Sim(state_dir=state_dir, seed=seed, boot_latency_s=boot_latency_s, tokens=tokens)
