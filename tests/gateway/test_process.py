"""`python -m gateway` as operators run it: configured by environment, stops cleanly on SIGTERM."""

from __future__ import annotations

import asyncio
import os
import signal
import sys

import httpx
from temporalio.testing import WorkflowEnvironment

from devstack import OpenBaoDev
from tests.bridge.conftest import REPO


async def test_gateway_process_serves_and_stops_on_sigterm(
    temporal_dev: WorkflowEnvironment, openbao: OpenBaoDev
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VAULT_", "TEMPORAL_", "LOBSTACK_"))}
    env |= {
        "TEMPORAL_ADDRESS": temporal_dev.client.service_client.config.target_host,
        "VAULT_ADDR": openbao.addr,
        "PYTHONUNBUFFERED": "1",
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "gateway",
        "--port",
        "0",
        cwd=REPO,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        assert proc.stdout is not None
        line = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode()
        while not line.startswith("gateway listening on "):
            assert line, "gateway exited before listening"
            line = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode()
        url = line.removeprefix("gateway listening on ").strip()
        async with httpx.AsyncClient(base_url=url, timeout=5) as http:
            assert (await http.get("/healthz")).json() == {"status": "ok"}
            assert (await http.get("/v1/skills")).status_code == 401
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 15) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
