"""`python -m bridge --config PATH`: run the agent bridge until SIGTERM or SIGINT, then exit 0."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

from bridge.agent import Bridge
from contracts.bootstrap import BootstrapConfig

log = logging.getLogger("bridge")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bridge", description="Lobstack agent bridge")
    parser.add_argument("--config", required=True, type=Path, help="bootstrap config JSON")
    parser.add_argument("--retry-for", type=float, default=300.0, help="seconds to retry an unreachable Vault")
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    logging.basicConfig(
        stream=sys.stderr, level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )

    try:
        config = BootstrapConfig.load(args.config)
    except (OSError, ValueError, TypeError) as exc:
        # Name the file and the error class only: the file holds the wrapped token.
        log.error("cannot load bootstrap config %s: %s", args.config, type(exc).__name__)
        return 2

    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("received %s, shutting down", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    bridge = Bridge(config, retry_for_s=args.retry_for)
    del config  # the bridge keeps a copy without the wrapped token
    bridge.start()
    while not stop.wait(1.0):
        pass
    bridge.stop()
    log.info("bridge stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
