"""The dev stack gives its clouds the API budgets it is told, as a worker reads them (the benchmarks rely on it)."""

from __future__ import annotations

from pathlib import Path

import pytest

from activities.cloud.budget import DOCUMENTED_CALLS_PER_S, Budgeted
from devstack.stack import StackOptions, dev_stack

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_budget_override_reaches_the_dev_stack_providers(tmp_path: Path) -> None:
    async with dev_stack(tmp_path, StackOptions(codec=False, api_budgets={"hetzner": 50})) as stack:
        hetzner, vultr = stack.providers["hetzner"], stack.providers["vultr"]
        assert isinstance(hetzner, Budgeted) and isinstance(vultr, Budgeted)
        assert hetzner.budget.calls_per_s == 50
        assert vultr.budget.calls_per_s == DOCUMENTED_CALLS_PER_S["vultr"]
