"""Worker process wiring: build the services from settings, connect, run until signalled."""

from __future__ import annotations

import logging

from temporalio.client import Client

from activities.cloud.base import CloudProvider
from activities.secrets import AgentVault, SecretsActivities, VaultSettings
from store import Registry, default_database_url
from workers.redaction import configure_logging
from workers.settings import WorkerSettings
from workers.worker import Services, default_providers, run_until_signalled
from workflows.queues import WORKFLOW_QUEUE


def build_services(
    *,
    vault_settings: VaultSettings,
    database_url: str,
    worker_settings: WorkerSettings,
    providers: dict[str, CloudProvider] | None = None,
) -> Services:
    vault = AgentVault(vault_settings)
    return Services(
        registry=Registry.from_url(database_url),
        secrets=SecretsActivities(vault),
        bootstrap=vault,
        providers=providers if providers is not None else default_providers(worker_settings),
    )


async def run_worker_from_env(address: str, namespace: str, *, task_queue: str = WORKFLOW_QUEUE) -> int:
    configure_logging()
    settings = WorkerSettings.from_env()
    vault_settings = VaultSettings.from_env()
    services = build_services(
        vault_settings=vault_settings, database_url=default_database_url(), worker_settings=settings
    )
    AgentVault(vault_settings).ensure_engines()
    client = await Client.connect(address, namespace=namespace)
    logging.getLogger("lobstack.worker").info("worker polling %s (namespace %s)", address, namespace)
    await run_until_signalled(client, services, settings, task_queue=task_queue)
    return 0
