"""Webhook endpoints of an account, for backend services and the CLI: add, remove and list where approval notices go.

`LobstackClient` stays light (contracts and the Temporal SDK only), so endpoint management, which needs the registry
and Vault, lives here beside it. A Slack URL is a credential: it goes to Vault, the registry keeps its host only.

    webhooks = Webhooks.open(database_url, VaultSettings.from_env())   # VAULT_ADDR, VAULT_TOKEN
    added = webhooks.add("acme", "https://hooks.example.com/lobstack", "generic")
    added.secret                          # the signing secret, shown once; kept in Vault, never in the database
    webhooks.endpoints("acme"); webhooks.remove("acme", added.endpoint.endpoint_id)

Every call runs for one account (row-level security on PostgreSQL). Bad input raises SpecError naming the field
(`account`, `url`, `format`, `secret`) before anything is stored.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Self

from activities.secrets.settings import VaultSettings
from activities.webhooks import SIGNING_SECRET, SLACK_URL, WebhookSecrets, new_signing_secret
from contracts.spec import SpecError
from contracts.webhooks import (
    WebhookEndpoint,
    url_in_registry,
    validate_account,
    validate_webhook_format,
    validate_webhook_url,
)
from store.registry import Registry
from store.webhooks import WebhookStore

__all__ = ["AddedWebhook", "Webhooks"]

SECRET_MIN = 24


@dataclass(frozen=True)
class AddedWebhook:
    endpoint: WebhookEndpoint
    # The generic format's signing secret (empty for Slack): give it to the receiver; it is not shown again.
    secret: str = field(default="", repr=False)


class Webhooks:
    def __init__(self, store: WebhookStore, secrets: WebhookSecrets, *, registry: Registry | None = None) -> None:
        self.store = store
        self.secrets = secrets
        self._registry = registry

    @classmethod
    def open(cls, database_url: str, vault: VaultSettings) -> Self:
        registry = Registry.from_url(database_url)
        return cls(WebhookStore(registry.engine, registry.roles), WebhookSecrets(vault), registry=registry)

    def close(self) -> None:
        self.secrets.close()
        if self._registry is not None:
            self._registry.close()

    def add(self, account_id: str, url: str, fmt: str = "generic", *, secret: str | None = None) -> AddedWebhook:
        """A new endpoint. Generic: `secret` (else a new random one) goes to Vault first, then the row is written."""
        validate_account(account_id)
        validate_webhook_url(url)
        fmt = validate_webhook_format(fmt)
        if fmt == "slack" and secret:
            raise SpecError("secret", "Slack webhooks are not signed; the secret is the URL Slack gave you")
        if secret is not None and fmt == "generic" and len(secret.strip()) < SECRET_MIN:
            raise SpecError("secret", f"must be at least {SECRET_MIN} characters (leave it out to have one made)")
        if self._find(account_id, url=url):
            raise SpecError("url", "is already a webhook of this account")
        endpoint_id = WebhookStore.new_id()
        made = ""
        if fmt == "generic":
            made = secret.strip() if secret else new_signing_secret()
            self.secrets.store(account_id, endpoint_id, {SIGNING_SECRET: made})
        else:
            self.secrets.store(account_id, endpoint_id, {SLACK_URL: url})
        try:
            endpoint = self.store.add(account_id, url_in_registry(url, fmt), fmt, endpoint_id=endpoint_id)
        except BaseException:
            self.secrets.delete(account_id, endpoint_id)
            raise
        return AddedWebhook(endpoint, made)

    def _find(self, account_id: str, *, endpoint_id: str = "", url: str = "") -> list[WebhookEndpoint]:
        """By id, or by URL as given (a Slack URL is matched by its fingerprint: the registry holds no more)."""
        if not url:
            return self.store.find(account_id, endpoint_id=endpoint_id)
        urls = {url, url_in_registry(url, "slack")}
        return [e for e in self.store.endpoints(account_id) if e.url in urls or e.endpoint_id == endpoint_id]

    def endpoints(self, account_id: str) -> list[WebhookEndpoint]:
        validate_account(account_id)
        return self.store.endpoints(account_id)

    def remove(self, account_id: str, endpoint_id: str = "", *, url: str = "") -> list[WebhookEndpoint]:
        """Remove the endpoint with this id (or URL) and its secret; returns what was removed (empty: none such)."""
        validate_account(account_id)
        if not endpoint_id and not url:
            raise SpecError("url", "name the webhook to remove by its URL or its id")
        found = self._find(account_id, endpoint_id=endpoint_id, url=url)
        for endpoint in found:
            self.store.remove(account_id, endpoint.endpoint_id)
            self.secrets.delete(account_id, endpoint.endpoint_id)
        return found
