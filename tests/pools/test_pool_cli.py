"""`lobstack pool ...`: set, status, list and delete a warm pool through the CLI, as an operator would; refusals name
the field (exit 2) before anything is contacted."""

from __future__ import annotations

import json

import pytest

from cloudsim.testing import RunningSim
from tests.clients.cli_run import arun
from tests.stack import Stack, eventually
from tests.workflows.test_clouds import clouds

pytestmark = pytest.mark.asyncio(loop_scope="session")

WHERE = ("--provider", "vultr", "--region", "us-east", "--size", "small")


async def test_an_operator_sets_watches_and_deletes_a_pool(stack: Stack, sim: RunningSim) -> None:
    env = {
        "TEMPORAL_ADDRESS": stack.temporal.service_client.config.target_host,
        "LOBSTACK_TASK_QUEUE": stack.task_queue,
    }
    async with stack.workers(providers=clouds(sim, stack), vm_boot_s={"vultr": 0.3}):
        empty = await arun("pool", "list", env=env)
        assert empty.code == 0 and "no warm pools" in empty.out, empty
        started = await arun("pool", "set", *WHERE, "--min", "1", "--max", "2", env=env)
        assert started.code == 0 and "vultr-us-east-small" in started.out and "desired 1-2" in started.out, started

        async def ready() -> dict[str, object] | None:
            shown = await arun("pool", "status", *WHERE, "--json", env=env)
            status = json.loads(shown.out)
            return status if status["ready"] == 1 else None

        status = await eventually(ready, timeout_s=90, what="a ready VM in the pool")
        assert status["pool_id"] == "vultr-us-east-small" and status["failed"] == 0
        listed = await arun("pool", "list", env=env)
        assert "vultr-us-east-small" in listed.out and "ready 1" in listed.out, listed
        shown = await arun("pool", "status", *WHERE, env=env)
        assert "ready" in shown.out and "claims served: 0" in shown.out, shown

        deleted = await arun("pool", "delete", *WHERE, env=env)
        assert deleted.code == 0 and "ready 0" in deleted.out, deleted
        gone = await arun("pool", "status", *WHERE, env=env)
        assert gone.code != 0 and "no warm pool vultr/us-east/small is running" in gone.err, gone
        assert "Traceback" not in gone.err
    # Vultr keeps labels as tags: no VM of the pool is left.
    assert not [vm for vm in sim.state()["vms"] if any("lobstack-pool" in t for t in vm["tags"])]

    for args, said in (
        (("pool", "set", *WHERE, "--min", "3", "--max", "2"), "max: must be between min (3) and 100"),
        (("pool", "set", "--provider", "digitalocean", "--region", "us-east", "--size", "small", "--min", "1",
          "--max", "1"), "invalid choice: 'digitalocean'"),
        (("pool", "set", *WHERE, "--min", "1", "--max", "1", "--max-idle", "5"), "max_idle_s: must be between 10"),
    ):  # fmt: skip
        refused = await arun(*args, env={"TEMPORAL_ADDRESS": "127.0.0.1:1"})
        assert refused.code == 2 and said in refused.err and "Traceback" not in refused.err, refused
