"""What `import clients.client` costs a backend service, against the Temporal SDK's own `import temporalio.client`.

    .venv/bin/python bench/import_cost.py [--runs 5]

Each import is timed in a fresh interpreter (time.perf_counter around the import statement, so interpreter start-up
is left out), the two alternating so a busy machine weighs on both alike; prints the median of each and their ratio.
Target: `client/sdk import ratio` at most 1.2, i.e. the client adds at most a fifth to what the SDK costs anyway
(it imports the SDK and `contracts` only; tests/clients/test_light_client.py holds the module list).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TIMED = "import time; t = time.perf_counter(); import {module}; print(time.perf_counter() - t)"


def import_seconds(module: str) -> float:
    out = subprocess.run(
        [sys.executable, "-c", TIMED.format(module=module)],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    )
    return float(out.stdout.strip())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    sdk: list[float] = []
    client: list[float] = []
    for _ in range(args.runs):
        sdk.append(import_seconds("temporalio.client"))
        client.append(import_seconds("clients.client"))
    sdk_s, client_s = statistics.median(sdk), statistics.median(client)
    print(f"python {sys.version.split()[0]}, {args.runs} fresh interpreters each, median")
    print(f"import temporalio.client: {sdk_s * 1000:.0f} ms")
    print(f"import clients.client:    {client_s * 1000:.0f} ms")
    print(f"client/sdk import ratio: {client_s / sdk_s:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
