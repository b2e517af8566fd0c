"""Running the gateway under uvicorn: `serving()` for tests and embedding, `run_gateway()` for `lobstack gateway`."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import socket
from collections.abc import AsyncIterator, Callable, Iterator

import uvicorn
from temporalio.client import Client

from connection.codec import data_converter_from_env
from connection.listening import listening_socket
from connection.settings import TemporalSettings
from gateway.app import create_app
from gateway.settings import GatewaySettings

log = logging.getLogger(__name__)


def _url(sock: socket.socket, tls: bool) -> str:
    host, port = sock.getsockname()[:2]
    if host in ("0.0.0.0", "::"):  # noqa: S104 - mapping a wildcard bind to a reachable address
        host = "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    return f"{'https' if tls else 'http'}://{host}:{port}"


class _EmbeddedServer(uvicorn.Server):
    """Signals belong to whoever embeds the gateway (pytest, the CLI), so uvicorn must not take them over."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def _server(settings: GatewaySettings) -> uvicorn.Server:
    config = uvicorn.Config(
        create_app(settings),
        access_log=False,  # request lines would show approval ids; our handlers log what matters, never a token
        lifespan="on",
        timeout_graceful_shutdown=5,
        ssl_certfile=settings.tls_certfile or None,
        ssl_keyfile=settings.tls_keyfile or None,
    )
    return _EmbeddedServer(config)


@contextlib.asynccontextmanager
async def serving(settings: GatewaySettings) -> AsyncIterator[str]:
    """Serve on settings.listen_host/listen_port (0 = a free port) inside the running event loop; yields the URL."""
    sock = listening_socket(settings.listen_host, settings.listen_port)
    server = _server(settings)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            if task.done():
                await task
                raise RuntimeError("gateway stopped during startup")
            await asyncio.sleep(0.01)
        yield _url(sock, bool(settings.tls_certfile))
    finally:
        server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await task
        sock.close()


async def run_gateway(
    host: str | None = None,
    port: int | None = None,
    *,
    settings: GatewaySettings | None = None,
    temporal: Client | None = None,
    stop: asyncio.Event | None = None,
    on_ready: Callable[[str], None] | None = None,
) -> None:
    """Serve until `stop` is set (or the task is cancelled).

    Without `settings`, they come from the environment (GatewaySettings.from_env) with a Temporal client connected to
    TEMPORAL_ADDRESS/TEMPORAL_NAMESPACE unless `temporal` is given. `host`/`port` override the listen address.
    """
    if settings is None:
        if not os.environ.get("VAULT_ADDR"):
            raise ValueError("vault_addr is required (VAULT_ADDR)")  # before connecting anywhere
        if temporal is None:
            t = TemporalSettings.from_env()
            try:
                # The workers' payload codec (LOBSTACK_CODEC_KEYS*), or the gateway could not read what they write.
                temporal = await Client.connect(
                    t.address, namespace=t.namespace, data_converter=data_converter_from_env()
                )
            except RuntimeError as err:  # the SDK reports every connect failure this way
                raise ConnectionError(f"cannot reach Temporal at {t.address}") from err
        settings = GatewaySettings.from_env(temporal)
    if host is not None:
        settings = dataclasses.replace(settings, listen_host=host)
    if port is not None:
        settings = dataclasses.replace(settings, listen_port=port)
    stop = stop or asyncio.Event()
    async with serving(settings) as url:
        log.info("gateway listening on %s (task queue %s)", url, settings.task_queue)
        if on_ready is not None:
            on_ready(url)
        await stop.wait()
