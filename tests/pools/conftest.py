"""A pool's workflow id is the same for every test using that (provider, region, size): one a failed test left running
(its worker gone with the test) must not become the next test's pool."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import pytest_asyncio
from temporalio.service import RPCError

from contracts.pool import POOL_PROVIDERS, pool_workflow_id
from contracts.spec import REGIONS, SIZES
from tests.stack import Stack


@pytest_asyncio.fixture(autouse=True, loop_scope="session")
async def no_pool_left_running(stack: Stack) -> AsyncIterator[None]:
    yield
    for provider in POOL_PROVIDERS:
        for region in REGIONS:
            for size in SIZES:
                with contextlib.suppress(RPCError):  # not found, or already closed: nothing to end
                    await stack.temporal.get_workflow_handle(pool_workflow_id(provider, region, size)).terminate(
                        "test over"
                    )
