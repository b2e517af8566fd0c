"""`python -m cloudsim`: serve the simulated clouds until SIGTERM/SIGINT, then stop every bridge it started."""

from __future__ import annotations

import argparse
import asyncio
import atexit
import logging
import signal
import sys
import tempfile
from pathlib import Path

import uvicorn

from cloudsim import DEFAULT_TOKENS, PROVIDERS
from cloudsim.app import build_app, make_sim
from cloudsim.pipeline import QuietDrops, Sim
from connection.listening import listening_socket

log = logging.getLogger("cloudsim")


def _token(value: str) -> tuple[str, str]:
    provider, sep, token = value.partition("=")
    if not sep or provider not in PROVIDERS or not token:
        raise argparse.ArgumentTypeError(f"expected PROVIDER=TOKEN with PROVIDER one of {', '.join(PROVIDERS)}")
    return provider, token


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m cloudsim", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--boot-latency", type=float, default=0.5, help="seconds from create to running")
    parser.add_argument("--state-dir", type=Path, default=None, help="per-VM files (bootstrap config, bridge log)")
    parser.add_argument("--token", type=_token, action="append", default=[], help="PROVIDER=TOKEN (repeatable)")
    parser.add_argument("--seed", type=int, default=0, help="seed for fault rolls and generated ids")
    parser.add_argument("--log-level", default="INFO")
    parser.add_argument(
        "--record", type=Path, default=None, help="append every provider request and answer to FILE (JSON lines)"
    )
    return parser.parse_args(argv)


async def serve(args: argparse.Namespace, sim: Sim) -> None:
    sock = listening_socket(args.host, args.port)
    host, port = sock.getsockname()[:2]
    sim.state.set_ip_block(port)
    config = uvicorn.Config(
        build_app(sim, record=args.record),
        log_level=args.log_level.lower(),
        access_log=False,
        timeout_graceful_shutdown=3,
        lifespan="on",
    )
    server = uvicorn.Server(config)
    logging.getLogger("uvicorn.error").addFilter(QuietDrops())
    # uvicorn swaps in its own SIGTERM/SIGINT handlers while serving and, after its graceful shutdown, re-raises the
    # signal against the handlers it found. Finding this one makes that a no-op, so a stop exits 0; a signal that
    # lands before uvicorn takes over still stops the server.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda _sig, _frame: setattr(server, "should_exit", True))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        if task.done():
            await task
            return
        await asyncio.sleep(0.01)
    print(f"cloudsim listening on http://{host}:{port}", flush=True)
    await task


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(
        stream=sys.stderr, level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    tokens = dict(DEFAULT_TOKENS)
    tokens.update(dict(args.token))
    state_dir = args.state_dir or Path(tempfile.mkdtemp(prefix="cloudsim-"))
    sim = make_sim(state_dir=state_dir, seed=args.seed, boot_latency_s=args.boot_latency, tokens=tokens)
    # Backstop for an exit that skips the ASGI lifespan shutdown (e.g. a startup failure).
    atexit.register(sim.stop_all_bridges)
    asyncio.run(serve(args, sim))
    return 0


if __name__ == "__main__":
    sys.exit(main())
