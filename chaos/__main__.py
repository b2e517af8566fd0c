"""python -m chaos [--n 200] [--seed 7] [--concurrency 40] [--timeout 1800] [--database-url URL] [--keep]

Starts its own Temporal dev server (state in a file), OpenBao (Raft storage, restarted mid-run), cloudsim and a
worker process (SIGKILLed and restarted), runs N agent lifecycles through injected faults, and ends with one line:
`chaos: <n> lifecycles, <t> terminal, orphans: VMs <a> secrets <b> policies <c> roles <d> keys <e> tokens <f>,
duplicates <g>`. Exit status 0 only when every lifecycle is terminal and every count is 0.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import signal
import sys
import tempfile
from pathlib import Path

from chaos.faults import FaultPlan
from chaos.run import run_chaos


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m chaos", description=__doc__.split("\n\n")[1])
    parser.add_argument("--n", type=int, default=200, help="lifecycles (default 200)")
    parser.add_argument("--seed", type=int, default=7, help="seeds cloudsim's fault rolls and the destroy schedule")
    parser.add_argument("--concurrency", type=int, default=0, help="lifecycles in flight (default: n/4, 5 to 50)")
    parser.add_argument(
        "--timeout", type=float, default=0, help="seconds for the whole run (default: 600 + 6 s per lifecycle)"
    )
    parser.add_argument("--kills", type=int, default=3, help="worker SIGKILLs (at least 1)")
    parser.add_argument("--boot-latency", type=float, default=2.0, help="cloudsim seconds from create to running")
    parser.add_argument("--database-url", default=None, help="registry (default: a SQLite file in the run's home)")
    parser.add_argument("--keep", action="store_true", help="keep the run's home (logs, databases) afterwards")
    args = parser.parse_args(argv)
    for name in ("n", "kills"):
        if getattr(args, name) < 1:
            parser.error(f"--{name}: must be at least 1")
    if args.concurrency < 0 or args.timeout < 0 or args.boot_latency < 0:
        parser.error("--concurrency, --timeout and --boot-latency: must not be negative")
    concurrency = args.concurrency or max(5, min(50, args.n // 4))
    timeout = args.timeout or 600 + 6 * args.n
    home = Path(tempfile.mkdtemp(prefix="lobstack-chaos-"))
    # SIGTERM unwinds like Ctrl-C, so every server, worker and simulated VM the run started is stopped with it.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        return asyncio.run(
            run_chaos(
                home,
                n=args.n,
                seed=args.seed,
                concurrency=concurrency,
                timeout_s=timeout,
                boot_latency_s=args.boot_latency,
                plan=FaultPlan(kills=args.kills),
                database_url=args.database_url,
            )
        )
    finally:
        if args.keep:
            print(f"run home kept: {home}")
        else:
            shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
