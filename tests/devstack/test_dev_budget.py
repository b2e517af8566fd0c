"""The dev stack honours an API budget override, as a worker does (the benchmarks rely on it)."""

from __future__ import annotations

from pathlib import Path

import pytest

from activities.cloud.budget import DOCUMENTED_CALLS_PER_S, Budgeted
from workers.dev import dev_stack

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_budget_override_reaches_the_dev_stack_providers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOBSTACK_API_BUDGET_HETZNER", "50")
    async with dev_stack(tmp_path, codec=False) as stack:
        hetzner, vultr = stack.providers["hetzner"], stack.providers["vultr"]
        assert isinstance(hetzner, Budgeted) and isinstance(vultr, Budgeted)
        assert hetzner.budget.calls_per_s == 50
        assert vultr.budget.calls_per_s == DOCUMENTED_CALLS_PER_S["vultr"]
