"""The codec server the Temporal Web UI (and `temporal` CLI) call to show encrypted payloads: POST `/encode` and
`/decode` with `{"payloads": [...]}` in protobuf JSON (base64 `data` and metadata values), per Temporal's remote codec
protocol. Only the last path segment counts, so it can be mounted under any prefix (e.g. `/<namespace>/decode`).

Decrypted payloads go only to an authenticated caller: every request must carry `Authorization: Bearer <token>`
matching one of the configured tokens (the UI's "pass the user access token" option), else 401. `/encode` is guarded
too: an open encoder would let anyone mint payloads our workers trust. CORS admits only the configured UI origins.

Configuration for `lobstack codec-server` (`run_codec_server_from_env`): the keyring as the worker reads it
(`LOBSTACK_CODEC_KEYS` ...), `LOBSTACK_CODEC_TOKENS` (comma-separated bearer tokens, at least 16 characters each),
`LOBSTACK_CODEC_CORS_ORIGINS` (comma-separated UI origins, e.g. `https://temporal.example.com`), and optionally
`LOBSTACK_CODEC_TLS_CERT`/`LOBSTACK_CODEC_TLS_KEY` (the UI sends the access token only to an https endpoint).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import ipaddress
import logging
import os
import re
from collections.abc import AsyncIterator, Callable, Collection, Iterator, Mapping, Sequence

import uvicorn
from google.protobuf import json_format
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from temporalio.api.common.v1 import Payloads

from connection.codec import CodecError, EncryptionCodec, Keyring
from connection.listening import listening_socket

log = logging.getLogger("lobstack.codec")

TOKENS_ENV = "LOBSTACK_CODEC_TOKENS"
CORS_ORIGINS_ENV = "LOBSTACK_CODEC_CORS_ORIGINS"
TLS_CERT_ENV = "LOBSTACK_CODEC_TLS_CERT"
TLS_KEY_ENV = "LOBSTACK_CODEC_TLS_KEY"
MIN_TOKEN_CHARS = 16
MAX_BODY_BYTES = 16 * 1024 * 1024  # several 2 MB payloads (Temporal's per-payload limit) in one UI request
# What the UI sends: Content-Type, X-Namespace, Authorization (pass access token), and the CSRF header some builds add.
ALLOWED_HEADERS = ["Content-Type", "X-Namespace", "Authorization", "X-CSRF-Token"]
_ORIGIN = re.compile(r"^https?://[A-Za-z0-9.\-\[\]:]+$")


class CodecServerConfigError(ValueError):
    pass


def _digest(token: str) -> bytes:
    # Comparing fixed-length digests keeps the comparison constant-time whatever the tokens' lengths.
    return hashlib.sha256(token.encode()).digest()


def _check_tokens(auth_token: str | Collection[str] | None) -> list[bytes]:
    tokens = [auth_token] if isinstance(auth_token, str) else list(auth_token or [])
    tokens = [t.strip() for t in tokens if t.strip()]
    for t in tokens:
        if len(t) < MIN_TOKEN_CHARS:
            raise CodecServerConfigError(f"codec server tokens must be at least {MIN_TOKEN_CHARS} characters")
    return [_digest(t) for t in tokens]


def _check_origins(cors_origins: Sequence[str]) -> list[str]:
    origins = [o.strip().rstrip("/") for o in cors_origins if o.strip()]
    for origin in origins:
        if not _ORIGIN.fullmatch(origin):
            # "*" is refused on purpose: decrypted payloads must not be readable by any page the user visits.
            raise CodecServerConfigError(f"cors origin {origin!r} is not allowed; use scheme://host[:port]")
    return origins


def create_codec_app(
    keyring: Keyring,
    *,
    auth_token: str | Collection[str] | None,
    cors_origins: Sequence[str] = (),
    allow_anonymous: bool = False,
) -> Starlette:
    """The codec server's ASGI app.

    `auth_token`: the bearer token(s) accepted. `allow_anonymous` skips authentication and exists only for a
    loopback-bound development stack whose Web UI has no login to take a token from; `run_codec_server` refuses it
    on any other address.
    """
    digests = _check_tokens(auth_token)
    if not digests and not allow_anonymous:
        raise CodecServerConfigError(f"the codec server needs at least one bearer token ({TOKENS_ENV})")
    codec = EncryptionCodec(keyring)

    def authenticated(request: Request) -> bool:
        if allow_anonymous:
            return True
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return False
        presented = _digest(token.strip())
        # Check every token so the time taken does not tell which one matched.
        return sum(hmac.compare_digest(presented, d) for d in digests) > 0

    async def handle(request: Request) -> Response:
        action = request.url.path.rstrip("/").rsplit("/", 1)[-1]
        if action not in ("encode", "decode"):
            return JSONResponse({"error": "not found; POST .../encode or .../decode"}, status_code=404)
        if not authenticated(request):
            log.info("codec %s refused: missing or wrong bearer token", action)
            return JSONResponse(
                {"error": "authentication required: Authorization: Bearer <token>"},
                status_code=401,
                headers={"WWW-Authenticate": 'Bearer realm="lobstack-codec"'},
            )
        length = request.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > MAX_BODY_BYTES:
            return JSONResponse({"error": f"body larger than {MAX_BODY_BYTES} bytes"}, status_code=413)
        body = await request.body()
        if len(body) > MAX_BODY_BYTES:
            return JSONResponse({"error": f"body larger than {MAX_BODY_BYTES} bytes"}, status_code=413)
        try:
            payloads = json_format.Parse(body, Payloads())
        except json_format.ParseError:
            return JSONResponse({"error": 'expected {"payloads": [...]} in protobuf JSON'}, status_code=400)
        try:
            fn = codec.encode if action == "encode" else codec.decode
            result = Payloads(payloads=await fn(payloads.payloads))
        except CodecError as err:  # names a key id at most, never material or plaintext
            return JSONResponse({"error": str(err)}, status_code=400)
        return Response(json_format.MessageToJson(result), media_type="application/json")

    async def healthz(_request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    return Starlette(
        routes=[
            Route("/healthz", healthz, methods=["GET"]),
            Route("/{path:path}", handle, methods=["POST"]),
        ],
        middleware=[
            Middleware(
                CORSMiddleware,
                allow_origins=_check_origins(cors_origins),
                allow_methods=["POST"],
                allow_headers=ALLOWED_HEADERS,
                # The UI's "include cross-origin credentials" option sends cookies; it must be allowed explicitly.
                allow_credentials=True,
                max_age=600,
            )
        ],
    )


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class _EmbeddedServer(uvicorn.Server):
    """Signals belong to whoever embeds the server (the CLI, the dev stack, pytest), not to uvicorn."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@contextlib.asynccontextmanager
async def serving(
    keyring: Keyring,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    auth_token: str | Collection[str] | None,
    cors_origins: Sequence[str] = (),
    allow_anonymous: bool = False,
    tls_certfile: str = "",
    tls_keyfile: str = "",
) -> AsyncIterator[str]:
    """Serve inside the running event loop (port 0 = a free port) for the block; yields the base URL."""
    if allow_anonymous and not _is_loopback(host):
        raise CodecServerConfigError(f"an unauthenticated codec server may only listen on loopback, not {host!r}")
    app = create_codec_app(keyring, auth_token=auth_token, cors_origins=cors_origins, allow_anonymous=allow_anonymous)
    sock = listening_socket(host, port)
    config = uvicorn.Config(
        app,
        access_log=False,
        lifespan="off",
        log_level="warning",
        timeout_graceful_shutdown=5,
        ssl_certfile=tls_certfile or None,
        ssl_keyfile=tls_keyfile or None,
    )
    server = _EmbeddedServer(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            if task.done():
                await task
                raise RuntimeError("codec server stopped during startup")
            await asyncio.sleep(0.01)
        bound_host, bound_port = sock.getsockname()[:2]
        shown = f"[{bound_host}]" if ":" in bound_host else bound_host
        yield f"{'https' if tls_certfile else 'http'}://{shown}:{bound_port}"
    finally:
        server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await task
        sock.close()


async def run_codec_server(
    host: str,
    port: int,
    keyring: Keyring,
    *,
    cors_origins: Sequence[str],
    auth_token: str | Collection[str] | None,
    allow_anonymous: bool = False,
    tls_certfile: str = "",
    tls_keyfile: str = "",
    stop: asyncio.Event | None = None,
    on_ready: Callable[[str], None] | None = None,
) -> None:
    """Serve until `stop` is set or the task is cancelled. `on_ready` receives the URL to give the Web UI."""
    stop = stop or asyncio.Event()
    async with serving(
        keyring,
        host=host,
        port=port,
        auth_token=auth_token,
        cors_origins=cors_origins,
        allow_anonymous=allow_anonymous,
        tls_certfile=tls_certfile,
        tls_keyfile=tls_keyfile,
    ) as url:
        log.info("codec server on %s (active key %s, %d key(s))", url, keyring.active_id, len(keyring.key_ids))
        if on_ready is not None:
            on_ready(url)
        await stop.wait()


def _csv(value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


async def run_codec_server_from_env(
    host: str = "127.0.0.1",
    port: int = 8081,
    *,
    env: Mapping[str, str] | None = None,
    stop: asyncio.Event | None = None,
    on_ready: Callable[[str], None] | None = None,
) -> None:
    """`lobstack codec-server`: keys, tokens, origins and TLS from the environment (see the module docstring)."""
    env = os.environ if env is None else env
    keyring = Keyring.from_env(env)
    if keyring is None:
        raise CodecServerConfigError("no codec keys configured (LOBSTACK_CODEC_KEYS, _KEYS_FILE or _WRAPPED_KEYS)")
    await run_codec_server(
        host,
        port,
        keyring,
        cors_origins=_csv(env.get(CORS_ORIGINS_ENV, "")),
        auth_token=_csv(env.get(TOKENS_ENV, "")),
        tls_certfile=env.get(TLS_CERT_ENV, ""),
        tls_keyfile=env.get(TLS_KEY_ENV, ""),
        stop=stop,
        on_ready=on_ready,
    )


__all__ = [
    "ALLOWED_HEADERS",
    "CORS_ORIGINS_ENV",
    "TLS_CERT_ENV",
    "TLS_KEY_ENV",
    "TOKENS_ENV",
    "CodecServerConfigError",
    "create_codec_app",
    "run_codec_server",
    "run_codec_server_from_env",
    "serving",
]
