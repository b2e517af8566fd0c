"""The stack one test's lifecycles run on: real Temporal, OpenBao, a registry, a local provider, a unique queue."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import secrets
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

import hvac
import hvac.exceptions
from temporalio.client import Client, WorkflowHandle

import devstack
from activities.cloud.base import CloudProvider
from activities.cloud.local import LocalProvider
from activities.internal_messages import internal_key
from activities.secrets import AgentVault, VaultSettings
from clients.client import LobstackClient
from contracts.approver_policy import AccountApprovalPolicy
from contracts.identifiers import approval_id as approval_workflow_id
from contracts.identifiers import workflow_id
from contracts.internal_messages import sealed_body
from contracts.models import ApprovalStatus, HealthChange, ToolApprovalInput
from contracts.spec import AgentSpec
from contracts.workflow_names import HEALTH_CHANGED_SIGNAL
from store import Registry, upgrade_database
from store.approval_policies import ApprovalPolicies
from store.engine import make_engine
from workers.main import build_services
from workers.settings import WorkerSettings
from workers.worker import Services, running_workers
from workflows.tool_approval import ToolApprovalWorkflow

AGENTS = Path(__file__).parent / "agents"
# The key id of `plain_or_encrypted_stack`'s codec (tests/conftest.py): forged ciphertexts name it too.
ENCRYPTED_STACK_KEY_ID = "stack-key"
T = TypeVar("T")
_orchestrator_tokens: dict[str, str] = {}


def orchestrator_token(openbao: devstack.OpenBaoDev) -> str:
    """A token holding only the `lobstack-orchestrator` policy (deploy/vault/policies/orchestrator.hcl), made once per
    server by the operator step itself (deploy/vault/bootstrap.sh with the root token). Every stack runs under it."""
    if openbao.addr not in _orchestrator_tokens:
        token_id = f"lobstack-orchestrator-{secrets.token_hex(12)}"
        devstack.bootstrap_openbao(openbao.addr, openbao.root_token, orchestrator_token_id=token_id)
        _orchestrator_tokens[openbao.addr] = token_id
    return _orchestrator_tokens[openbao.addr]


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
    # The OpenBao root token, for test set-up and inspection only; the service runs under `vault.settings.token`.
    operator_token: str = field(default="", repr=False)

    def workers(
        self,
        local: LocalProvider | None = None,
        *,
        providers: dict[str, CloudProvider] | None = None,
        vm_boot_s: dict[str, float] | None = None,
        graceful_shutdown: timedelta = timedelta(seconds=10),
        sticky_timeout: timedelta = timedelta(seconds=10),
    ) -> contextlib.AbstractAsyncContextManager[object]:
        """`graceful_shutdown`: how long leaving waits for activities still running (as graceful_shutdown_s does);
        `sticky_timeout`: how long, once these workers are gone, their workflows' next tasks wait for them."""
        services = self.services
        chosen = dict(services.providers) if providers is None else dict(providers)
        if local is not None:
            chosen["local"] = local
        services = Services(services.registry, services.secrets, services.bootstrap, chosen, vm_boot_s=vm_boot_s or {})
        return running_workers(self.temporal, services, task_queue=self.task_queue, graceful_shutdown=graceful_shutdown)

    async def health_changed(self, agent_id: str, change: HealthChange) -> None:
        """What the fleet monitor sends: the change sealed with this process's workers' key."""
        target = workflow_id(agent_id)
        body = sealed_body(internal_key(), target, HEALTH_CHANGED_SIGNAL, dataclasses.asdict(change))
        await self.temporal.get_workflow_handle(target).signal(HEALTH_CHANGED_SIGNAL, body)

    def spec(self, **overrides: object) -> AgentSpec:
        fields: dict[str, Any] = {
            "account_id": "acme",
            "name": "helper",
            "agent_id": f"t-{uuid.uuid4().hex[:16]}",
            "skills": ["web.search"],
            "health_timeout_s": 60,
        }
        fields.update(overrides)
        return AgentSpec(**fields)

    def local_with(self, argv: Sequence[str]) -> LocalProvider:
        return LocalProvider(state_dir=self.local.state_dir, bridge_argv=argv, stop_timeout_s=5)

    def secret_values(self, agent_id: str) -> list[str]:
        """Every value stored under the agent's KV path, read with the operator's token (the orchestrator's policy
        writes agent secrets but cannot read them back)."""
        root = hvac.Client(url=self.vault.settings.addr, token=self.operator_token)
        kv = root.secrets.kv.v2
        mount = self.vault.settings.kv_mount
        prefix = self.vault.names(agent_id).kv_prefix
        try:
            keys = kv.list_secrets(path=prefix, mount_point=mount)["data"]["keys"]
        except hvac.exceptions.InvalidPath:
            return []
        values: list[str] = []
        for key in keys:
            data = kv.read_secret_version(path=prefix + key, mount_point=mount, raise_on_deleted_version=True)
            values.extend(str(v) for v in data["data"]["data"].values())
        return values

    async def start_approval(
        self, agent_id: str, *, approvers: Sequence[str], account_id: str = "acme"
    ) -> WorkflowHandle[ToolApprovalWorkflow, ApprovalStatus]:
        """Start a ToolApproval as the gateway does when the agent's bridge asks to send an email."""
        request_id = uuid.uuid4().hex[:12]
        return await self.temporal.start_workflow(
            ToolApprovalWorkflow.run,
            ToolApprovalInput(
                agent_id=agent_id,
                account_id=account_id,
                request_id=request_id,
                tool="email.send",
                approvers=list(approvers),
                publish_search_attribute=False,
            ),
            id=approval_workflow_id(agent_id, request_id),
            task_queue=self.task_queue,
        )

    def vms_of(self, agent_id: str) -> int:
        return len([vm for vm in self.local.list_managed() if vm.agent_id == agent_id])


# The approvers the tests' accounts have (issue 13: only an account's approvers decide); mallory and eve never are.
TEST_APPROVERS = ("alice", "bob", "carol", "cto", "erin", "frank", "gina", "admin", "ui-alice", "demo-approver")
TEST_ACCOUNTS = ("acme", "globex", "initech", "acct", "acct-a", "acct-7", "other", "acme-dev", "acme-private")


def seed_approvers(database_url: str) -> None:
    """Give the tests' accounts their approvers, as an operator would with `lobstack approvers add`."""
    engine = make_engine(database_url)
    try:
        policies = ApprovalPolicies(engine=engine)
        for account in TEST_ACCOUNTS:
            policies.save(AccountApprovalPolicy(account_id=account, approvers=list(TEST_APPROVERS)))
    finally:
        engine.dispose()


def make_stack(temporal: Client, openbao: devstack.OpenBaoDev, database_url: str, tmp_path: Path) -> Stack:
    vault_settings = VaultSettings(addr=openbao.addr, token=orchestrator_token(openbao))
    vault = AgentVault(vault_settings)
    vault.ensure_engines()  # verifies only: mounting was the operator step
    local = LocalProvider(state_dir=tmp_path / "vms", stop_timeout_s=5)
    upgrade_database(database_url)  # the operator's `lobstack db upgrade`, before any worker starts
    seed_approvers(database_url)
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
        operator_token=openbao.root_token,
    )


def reap(stack: Stack) -> None:
    """A failed test must not leave agent processes running into the next one."""
    for vm in stack.local.list_managed():
        stack.local.delete(vm.vm_id)
    stack.registry.close()


async def eventually(check: Callable[[], Awaitable[T | None]], *, timeout_s: float = 30, what: str = "") -> T:
    """Poll an observable condition until it holds (returns non-None) or the deadline passes; never a blind sleep."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    delay = 0.02
    while True:
        result = await check()
        if result is not None:
            return result
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"not within {timeout_s}s: {what or check}")
        await asyncio.sleep(delay)
        delay = min(delay * 2, 0.5)
