"""Worker process wiring: build the services from settings, connect, run until signalled."""

from __future__ import annotations

import logging
import os

from temporalio.client import Client
from temporalio.converter import DataConverter

from activities.cloud.base import CloudProvider
from activities.internal_messages import INTERNAL_KEY_ENV, internal_key
from activities.secrets import AgentVault, SecretsActivities, VaultSettings
from connection.codec import Keyring, data_converter
from contracts.queues import WORKFLOW_QUEUE
from store import Registry, default_database_url
from workers.redaction import configure_logging
from workers.search_attributes import ensure_search_attributes
from workers.settings import WorkerSettings
from workers.worker import Services, default_providers, run_until_signalled


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
        gateway_url=worker_settings.gateway_url,
        vm_boot_s=worker_settings.vm_boot_s,
        firewall_rules=worker_settings.firewall_rules,
    )


async def run_worker_from_env(
    address: str, namespace: str, settings: WorkerSettings | None = None, *, task_queue: str = WORKFLOW_QUEUE
) -> int:
    configure_logging()
    settings = settings or WorkerSettings.from_env()
    vault_settings = VaultSettings.from_env()
    services = build_services(
        vault_settings=vault_settings, database_url=default_database_url(), worker_settings=settings
    )
    AgentVault(vault_settings).ensure_engines()
    log = logging.getLogger("lobstack.worker")
    # Missing in production or too short: stops the worker here (`lobstack worker` says so in one line first).
    internal_key(required=settings.environment == "production")
    if not os.environ.get(INTERNAL_KEY_ENV):
        log.warning(
            "%s is not set: health signals are sealed with a key of this process only; set the same key on "
            "every worker when more than one runs",
            INTERNAL_KEY_ENV,
        )
    keyring = Keyring.from_env()  # LOBSTACK_CODEC_KEYS / _KEYS_FILE / _WRAPPED_KEYS
    if keyring is None:
        log.warning("payloads are NOT encrypted: set LOBSTACK_CODEC_KEYS (or _KEYS_FILE, _WRAPPED_KEYS)")
        converter = DataConverter.default
    else:
        log.info("payloads encrypted (active key %s, %d key(s))", keyring.active_id, len(keyring.key_ids))
        converter = data_converter(keyring)
    client = await Client.connect(address, namespace=namespace, data_converter=converter)
    await ensure_search_attributes(client)  # before any approval gate can upsert one the namespace lacks
    await run_until_signalled(client, services, settings, task_queue=task_queue)
    return 0
