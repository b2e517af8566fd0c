"""Build and run the workers: the workflow queue (lifecycle, secrets, registry, health) and one queue per provider.

Dependencies are built once here and injected into the activity classes; tests build the same workers with their own
providers and servers through `build_workers`.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import os
import signal
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TypedDict

from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode
from temporalio.worker import Interceptor, Worker, WorkerDeploymentConfig
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner

from activities.approvals import ApprovalActivities
from activities.approver_policy import ApproverPolicyActivities
from activities.caller_identity import CallerIdentityActivities
from activities.cloud.activities import BootstrapIssuer, CloudActivities
from activities.cloud.base import CloudProvider
from activities.cloud.budget import ApiBudget, Budgeted
from activities.cloud.firewalls import FirewallActivities
from activities.cloud.local import LocalProvider
from activities.cloud.pool_vms import PoolVMActivities
from activities.cloud.providers import build_providers
from activities.health import HealthActivities
from activities.internal_messages import InternalMessageActivities, internal_key
from activities.limits import LimitsActivities
from activities.maintenance import maintenance_activities
from activities.pool_claims import PoolClaimActivities
from activities.registry import RegistryActivities
from activities.secrets import SecretsActivities
from activities.secrets.pool_activities import PoolSecretsActivities
from activities.secrets.pool_vault import PoolVault
from activities.webhooks import DEFAULT_UI_URL, WebhookActivities, WebhookSecrets
from contracts.firewall import FirewallRules, rules_from_env
from contracts.pool import POOL_PROVIDERS
from contracts.queues import WORKFLOW_QUEUE, cloud_queue
from store import Registry
from store.account_limits import AccountLimitsStore
from store.approval_policies import ApprovalPolicies
from store.webhooks import WebhookStore
from workers.converter import worker_client
from workers.interceptors import ErrorTranslation
from workers.library_hooks import apply_activation_jobs_as_one_batch
from workers.settings import WorkerSettings
from workers.versioning import UnversionedRunner
from workflows.account_limits import AccountLimitsWorkflow
from workflows.agent_lifecycle import AgentLifecycleWorkflow
from workflows.approver_settings import ApproverSettingsWorkflow
from workflows.fleet_health import FleetHealthWorkflow
from workflows.key_rotation import KeyRotationWorkflow
from workflows.orphan_sweep import OrphanSweepWorkflow
from workflows.tool_approval import ToolApprovalWorkflow
from workflows.warm_pool import WarmPoolWorkflow

# --- maintenance: the scheduled workflows (workers/schedules.py), on the workflow queue ---
MAINTENANCE_WORKFLOWS = [KeyRotationWorkflow, OrphanSweepWorkflow, FleetHealthWorkflow]
# Every workflow the workflow queue runs; the replay tests replay recorded histories against these (workers/replay.py).
WORKFLOWS: Sequence[type] = (
    AgentLifecycleWorkflow,
    ToolApprovalWorkflow,
    ApproverSettingsWorkflow,
    AccountLimitsWorkflow,
    WarmPoolWorkflow,
    *MAINTENANCE_WORKFLOWS,
)


def worker_interceptors() -> list[Interceptor]:
    """The interceptors of every worker of the process, and of the replayer that checks recorded histories."""
    return [ErrorTranslation()]


@dataclass
class Services:
    """The clients the activities need; built once per worker process."""

    registry: Registry
    secrets: SecretsActivities
    bootstrap: BootstrapIssuer
    providers: Mapping[str, CloudProvider]
    # Put in every VM's bootstrap config: where its bridge asks for skills and tool approvals (LOBSTACK_GATEWAY_URL).
    gateway_url: str = ""
    # --- maintenance (KeyRotation, OrphanSweep, FleetHealth) ---
    # The client the sweep lists lifecycles with and the fleet monitor signals through; None: the worker's own.
    temporal: Client | None = None
    # The Web UI's address in approval notices' links; empty: LOBSTACK_UI_URL, else the dev server's UI.
    ui_url: str = ""
    # Typical boot seconds per provider: when wait_vm_running first looks (WorkerSettings.vm_boot_s).
    vm_boot_s: Mapping[str, float] = field(default_factory=dict)
    # Every agent's firewall rules on the clouds; None: from LOBSTACK_FIREWALL_* (contracts/firewall.py).
    firewall_rules: FirewallRules | None = None


def default_providers(settings: WorkerSettings, env: Mapping[str, str] | None = None) -> dict[str, CloudProvider]:
    """The providers this worker serves (LOBSTACK_PROVIDERS); clouds are wrapped in their API budget."""
    env = os.environ if env is None else env
    providers: dict[str, CloudProvider] = {}
    clouds = [name for name in settings.providers if name != "local"]
    if "local" in settings.providers:
        providers["local"] = LocalProvider(state_dir=settings.local_vm_dir)
    for name, adapter in build_providers(clouds, env).items():
        providers[name] = Budgeted(adapter, ApiBudget.for_provider(name, env))
    return providers


class _CommonOptions(TypedDict):
    """What every worker of the process shares, typed so that `Worker(**common)` is checked."""

    activity_executor: concurrent.futures.Executor
    interceptors: Sequence[Interceptor]
    max_concurrent_activities: int
    graceful_shutdown_timeout: timedelta
    # How long a workflow task waits for the worker that last ran the workflow (it holds the workflow in its cache)
    # before any worker of the queue may take it: the delay a stopped worker adds to its open workflows.
    sticky_queue_schedule_to_start_timeout: timedelta
    # Every queue of the process is one Worker Deployment Version: a pinned workflow's activities also run on the
    # version it is pinned to (workers/settings.py Versioning).
    deployment_config: WorkerDeploymentConfig | None


def build_workers(
    client: Client,
    services: Services,
    *,
    executor: concurrent.futures.Executor,
    task_queue: str = WORKFLOW_QUEUE,
    max_concurrent_activities: int = 64,
    graceful_shutdown: timedelta = timedelta(seconds=10),
    sticky_timeout: timedelta = timedelta(seconds=10),
    deployment: WorkerDeploymentConfig | None = None,
) -> list[Worker]:
    common = _CommonOptions(
        activity_executor=executor,
        interceptors=worker_interceptors(),
        max_concurrent_activities=max_concurrent_activities,
        graceful_shutdown_timeout=graceful_shutdown,
        sticky_queue_schedule_to_start_timeout=sticky_timeout,
        deployment_config=deployment,
    )
    versioned = deployment is not None and deployment.use_worker_versioning
    # Whatever converter the caller's client has, the workers decode hostile payloads without raising.
    client = worker_client(client)
    registry_acts = RegistryActivities(services.registry)
    approval_acts = ApprovalActivities(services.temporal or client)
    caller_acts = CallerIdentityActivities(services.temporal or client)
    policy_acts = ApproverPolicyActivities(
        ApprovalPolicies(engine=services.registry.engine, roles=services.registry.roles)
    )
    limits_acts = LimitsActivities(
        AccountLimitsStore(engine=services.registry.engine, roles=services.registry.roles),
        services.registry,
        services.providers,
    )
    health_acts = HealthActivities()
    # The seal check of system messages; the fleet monitor seals with the same key (activities/internal_messages.py).
    seal_acts = InternalMessageActivities(internal_key())
    # Approval notices to the accounts' webhooks (workflows/notices.py); signing secrets read from Vault.
    notice_acts = WebhookActivities(
        WebhookStore(services.registry.engine, services.registry.roles),
        WebhookSecrets(services.secrets.vault.settings),
        ui_url=services.ui_url or os.environ.get("LOBSTACK_UI_URL", "") or DEFAULT_UI_URL,
        namespace=client.namespace,
    )
    cloud_acts = CloudActivities(
        providers=services.providers,
        bootstrap=services.bootstrap,
        gateway_url=services.gateway_url,
        vm_boot_s=services.vm_boot_s,
    )
    # Warm pools (workflows/warm_pool.py): pool identities in Vault, pool VMs on the clouds that can adopt them.
    pool_vault = PoolVault(services.secrets.vault.settings)
    pool_secret_acts = PoolSecretsActivities(services.secrets.vault, pool_vault, gateway_url=services.gateway_url)
    pool_vm_acts = PoolVMActivities(
        providers=services.providers, bootstrap=pool_vault, gateway_url=services.gateway_url
    )
    claim_acts = PoolClaimActivities(services.temporal or client)
    firewall_acts = FirewallActivities(
        providers=services.providers, rules=services.firewall_rules or rules_from_env(os.environ)
    )
    # --- maintenance: KeyRotation, OrphanSweep, FleetHealth and agent-data cleanup, on the workflow queue ---
    maintenance = maintenance_activities(
        vault=services.secrets.vault,
        registry=services.registry,
        providers=services.providers,
        temporal=services.temporal or client,
    )
    workflow_worker = Worker(
        client,
        task_queue=task_queue,
        workflows=list(WORKFLOWS),
        # The workflows declare their versioning behavior; a worker that is not versioned must not send it.
        workflow_runner=SandboxedWorkflowRunner() if versioned else UnversionedRunner(),
        activities=[
            services.secrets.mint_secrets,
            services.secrets.destroy_secrets,
            services.secrets.verify_secrets_gone,
            services.secrets.revoke_agent_tokens,
            registry_acts.record_transition,
            approval_acts.close_approvals,
            policy_acts.account_policy,
            policy_acts.change_approvers,
            limits_acts.admit_agent,
            limits_acts.change_limits,
            caller_acts.caller_identity,
            health_acts.wait_healthy,
            health_acts.probe_agent,
            seal_acts.check_seal,
            claim_acts.claim_pool_vm,
            pool_secret_acts.mint_pool_identity,
            pool_secret_acts.deliver_claim,
            pool_secret_acts.destroy_pool_identity,
            pool_secret_acts.verify_pool_identity_gone,
            notice_acts.notice_targets,
            notice_acts.deliver_webhook,
            *maintenance,
        ],
        **common,
    )
    # Apply every job of an activation before any workflow code runs (Temporal's coming default, recorded in each
    # new history). Without it, a `destroy` signal and an activity's result that reach one workflow task run in an
    # order that can differ between the first run and a replay (seen after a worker SIGKILL in `make chaos`: the
    # replay skipped the `vm.created` record and failed as non-deterministic). Histories started without the flag
    # keep the old order. A private hook of temporalio: `lobstack worker` checks it is there (workers/library_hooks.py).
    apply_activation_jobs_as_one_batch(workflow_worker)
    workers = [workflow_worker]
    cloud_activities: Sequence[Callable[..., object]] = [
        cloud_acts.create_vm,
        cloud_acts.wait_vm_running,
        cloud_acts.delete_vm,
        cloud_acts.verify_vm_gone,
    ]
    # The local provider has no firewall; each cloud provider's queue also makes and deletes agents' firewalls.
    firewall_activities: Sequence[Callable[..., object]] = [
        firewall_acts.ensure_firewall,
        firewall_acts.delete_firewall,
        firewall_acts.verify_firewall_gone,
    ]
    pool_vm_activities: Sequence[Callable[..., object]] = [
        pool_vm_acts.create_pool_vm,
        pool_vm_acts.adopt_pool_vm,
        pool_vm_acts.delete_pool_vm,
        pool_vm_acts.verify_pool_vm_gone,
    ]
    for name, provider in services.providers.items():
        pooled = pool_vm_activities if name in POOL_PROVIDERS else []
        # Temporal enforces this across every worker on the queue: the fleet-wide share of the provider's budget.
        rate = provider.budget.activities_per_s if isinstance(provider, Budgeted) else None
        workers.append(
            Worker(
                client,
                task_queue=cloud_queue(name, task_queue),
                activities=[
                    *cloud_activities,
                    *(firewall_activities if name in firewall_acts.providers else []),
                    *pooled,
                ],
                max_task_queue_activities_per_second=rate,
                **common,
            )
        )
    return workers


@contextlib.asynccontextmanager
async def running_workers(
    client: Client,
    services: Services,
    *,
    task_queue: str = WORKFLOW_QUEUE,
    max_concurrent_activities: int = 64,
    graceful_shutdown: timedelta = timedelta(seconds=10),
    sticky_timeout: timedelta = timedelta(seconds=10),
    deployment: WorkerDeploymentConfig | None = None,
) -> AsyncIterator[list[Worker]]:
    """Run the workers for the duration of the block; on exit they shut down gracefully."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=max_concurrent_activities) as executor:
        workers = build_workers(
            client,
            services,
            executor=executor,
            task_queue=task_queue,
            max_concurrent_activities=max_concurrent_activities,
            graceful_shutdown=graceful_shutdown,
            sticky_timeout=sticky_timeout,
            deployment=deployment,
        )
        tasks = [asyncio.create_task(w.run()) for w in workers]
        try:
            workflow_queue = workers[0].task_queue
            kinds = [(workflow_queue, TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW)]
            kinds += [(w.task_queue, TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY) for w in workers]
            await _until_polling(client, kinds, tasks)
            yield workers
        finally:
            await asyncio.gather(*(w.shutdown() for w in workers), return_exceptions=True)
            await asyncio.gather(*tasks, return_exceptions=True)


# A describe sent as the connection under it drops fails with CANCELLED ("operation was canceled", seen in CI right
# after the previous test's workers shut down) and the SDK does not retry it; these codes mean "ask again".
TRANSIENT_DESCRIBE_CODES = frozenset(
    {
        RPCStatusCode.CANCELLED,
        RPCStatusCode.UNAVAILABLE,
        RPCStatusCode.DEADLINE_EXCEEDED,
        RPCStatusCode.RESOURCE_EXHAUSTED,
    }
)


async def _until_polling(
    client: Client,
    queues: list[tuple[str, TaskQueueType.ValueType]],
    tasks: list[asyncio.Task[None]],
    timeout_s: float = 30,
) -> None:
    """Return once the server has seen a poller on every queue.

    A query sent to a brand-new queue before its first poll arrives waits half a minute and fails, so callers that
    start workers and then talk to workflows wait for this instead of guessing.
    """
    deadline = asyncio.get_running_loop().time() + timeout_s
    pending = list(queues)
    delay = 0.02
    while pending:
        for task in tasks:
            if task.done():
                task.result()  # a worker that died on start raises here
        queue, kind = pending[0]
        if await _has_poller(client, queue, kind, deadline):
            pending.pop(0)
            continue
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError(f"no poller registered on task queue {queue!r} after {timeout_s}s")
        await asyncio.sleep(delay)
        delay = min(delay * 2, 0.5)


async def _has_poller(client: Client, queue: str, kind: TaskQueueType.ValueType, deadline: float) -> bool:
    """Whether the server has seen a poller on the queue; a transient answer is "not yet" until the deadline."""
    try:
        response = await client.workflow_service.describe_task_queue(
            DescribeTaskQueueRequest(namespace=client.namespace, task_queue=TaskQueue(name=queue), task_queue_type=kind)
        )
    except RPCError as err:
        if err.status == RPCStatusCode.UNIMPLEMENTED:  # the time-skipping test server has no such call
            return True
        if err.status in TRANSIENT_DESCRIBE_CODES and asyncio.get_running_loop().time() <= deadline:
            return False  # a read-only call: safe to send again
        raise
    return bool(response.pollers)


def describe_version(settings: WorkerSettings) -> str:
    """The worker's version as its start-up line says it."""
    version = settings.versioning.version
    if version is None:
        return "no build id, unversioned"
    routing = "versioned" if settings.versioning.enabled else "unversioned"
    return f"deployment {version.deployment_name}, build id {version.build_id}, {routing}"


async def run_until_signalled(
    client: Client, services: Services, settings: WorkerSettings, *, task_queue: str = WORKFLOW_QUEUE
) -> None:
    """The `lobstack worker` main loop: run until SIGINT or SIGTERM, then drain gracefully."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with running_workers(
        client,
        services,
        task_queue=task_queue,
        max_concurrent_activities=settings.max_concurrent_activities,
        graceful_shutdown=timedelta(seconds=settings.graceful_shutdown_s),
        sticky_timeout=timedelta(seconds=settings.sticky_timeout_s),
        deployment=settings.versioning.deployment_config(),
    ):
        # Said once the server has seen every queue's poller and SIGTERM drains gracefully: what a supervisor (or a
        # test) waits for before it counts on the worker, or stops it.
        logging.getLogger("lobstack.worker").info(
            "worker polling %s (namespace %s, %s)",
            client.service_client.config.target_host,
            client.namespace,
            describe_version(settings),
        )
        await stop.wait()
