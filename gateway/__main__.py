"""`python -m gateway [--host H] [--port P]`: serve the bridge gateway until SIGTERM or SIGINT, then exit 0.

Configured by environment (see GatewaySettings.from_env): TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, VAULT_ADDR, ...
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys

from gateway.server import run_gateway

log = logging.getLogger("gateway")


async def _main(host: str | None, port: int | None) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await run_gateway(host, port, stop=stop, on_ready=lambda url: print(f"gateway listening on {url}", flush=True))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gateway", description="Lobstack bridge gateway")
    parser.add_argument("--host", default=None, help="listen address (default LOBSTACK_GATEWAY_HOST or 127.0.0.1)")
    parser.add_argument("--port", type=int, default=None, help="listen port (default LOBSTACK_GATEWAY_PORT or 8788)")
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    logging.basicConfig(
        stream=sys.stderr, level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        asyncio.run(_main(args.host, args.port))
    except ValueError as exc:  # a bad setting; the messages name the field and never a secret
        log.error("%s", exc)
        return 2
    except ConnectionError as exc:
        log.error("%s", exc)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
