"""Helpers shared by the gateway and bridge tests: a gateway served in the test's event loop, running agents, tokens."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx
import hvac

from activities.cloud.activities import BootstrapIssuer
from activities.cloud.local import LocalProvider
from bridge.introduction import Introduction
from contracts.bootstrap import BootstrapConfig
from contracts.models import AgentState
from gateway import GatewaySettings, serving
from tests.stack import Stack

T = TypeVar("T")

AUTH_CACHE_S = 1.0


@contextlib.asynccontextmanager
async def gateway_for(stack: Stack, **overrides: object) -> AsyncIterator[str]:
    """The real gateway app under uvicorn on a free port, in this event loop (so tests must use async HTTP)."""
    fields: dict[str, Any] = {
        "temporal": stack.temporal,
        "vault_addr": stack.vault.settings.addr,
        "task_queue": stack.task_queue,
        "listen_port": 0,
        "auth_cache_s": AUTH_CACHE_S,
        "poll_interval_s": 0.2,
    }
    fields.update(overrides)
    async with serving(GatewaySettings(**fields)) as url:
        yield url


@dataclass
class WithGateway:
    """What the lead wires into the worker: every bootstrap config carries the gateway's URL."""

    inner: BootstrapIssuer
    gateway_url: str
    skills_poll_s: float = 0.2

    def issue_bootstrap(self, agent_id: str) -> BootstrapConfig:
        config = self.inner.issue_bootstrap(agent_id)
        return dataclasses.replace(config, gateway_url=self.gateway_url, skills_poll_s=self.skills_poll_s)


def stack_with_gateway(stack: Stack, gateway_url: str) -> Stack:
    services = dataclasses.replace(stack.services, bootstrap=WithGateway(stack.services.bootstrap, gateway_url))
    return dataclasses.replace(stack, services=services)


@dataclass
class Live:
    """Workers, a gateway and an HTTP client to it; agents started through `agent` are destroyed on exit."""

    stack: Stack
    url: str
    http: httpx.AsyncClient
    agent_ids: list[str] = dataclasses.field(default_factory=list)

    async def agent(self, **spec: object) -> str:
        agent_id = await self.stack.client.create_agent(self.stack.spec(**spec))
        self.agent_ids.append(agent_id)
        await self.stack.client.wait_for(agent_id, {AgentState.RUNNING}, timeout_s=60)
        return agent_id


@contextlib.asynccontextmanager
async def live(
    stack: Stack, *, gateway_in_bootstrap: bool = False, local: LocalProvider | None = None, **gateway: object
) -> AsyncIterator[Live]:
    """With `gateway_in_bootstrap`, every agent's bridge is configured with this gateway (as the worker will do);
    `local` replaces the stack's local provider (say, one that runs its bridges as on a VM)."""
    async with gateway_for(stack, **gateway) as url, httpx.AsyncClient(base_url=url, timeout=40) as http:
        workers_of = stack_with_gateway(stack, url) if gateway_in_bootstrap else stack
        async with workers_of.workers(local):
            env = Live(stack, url, http)
            try:
                yield env
            finally:
                # Leave nothing behind in the session's OpenBao for later tests.
                for agent_id in env.agent_ids:
                    with contextlib.suppress(Exception):
                        await stack.client.destroy(agent_id, requested_by="test")
                for agent_id in env.agent_ids:
                    with contextlib.suppress(Exception):
                        await stack.client.wait_for(agent_id, {AgentState.DESTROYED}, timeout_s=30)
                    # Open approvals would outlive this test's workers and stall listings of every approval.
                    query = (
                        "WorkflowType = 'ToolApproval' AND ExecutionStatus = 'Running' "
                        f"AND WorkflowId STARTS_WITH 'approval-{agent_id}-'"
                    )
                    async for wf in stack.temporal.list_workflows(query):
                        with contextlib.suppress(Exception):
                            await stack.temporal.get_workflow_handle(wf.id).terminate("test finished")


def _login(stack: Stack, agent_id: str) -> str:
    # A second, real AppRole login of the agent: a fresh wrapped SecretID, unwrapped and used exactly as a bridge does.
    session = Introduction(stack.vault.issue_bootstrap(agent_id)).run()
    token = str(session.client.token)
    session.client.adapter.close()
    return token


async def agent_token(stack: Stack, agent_id: str) -> str:
    return await asyncio.to_thread(_login, stack, agent_id)


def root_vault(stack: Stack) -> hvac.Client:
    return hvac.Client(url=stack.vault.settings.addr, token=stack.operator_token)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def eventually(check: Callable[[], Awaitable[T | None]], *, within: float, what: str) -> T:
    """Poll an async check until it returns something truthy; fail with `what` after `within` seconds."""
    deadline = time.monotonic() + within
    delay = 0.05
    last: T | None = None
    while time.monotonic() < deadline:
        last = await check()
        if last:
            return last
        await asyncio.sleep(delay)
        delay = min(delay * 1.5, 0.5)
    raise AssertionError(f"no {what} within {within}s (last: {last!r})")
