"""Approval notices delivered to an account's webhooks, and the Vault home of their signing secrets.

`WebhookSecrets` keeps one secret per endpoint in the KV mount at `lobstack-webhooks/<account>/<endpoint>`
(deploy/vault/policies/orchestrator.hcl): the generic format's signing secret, or a Slack endpoint's URL (Slack's
URL is its credential). Made by `lobstack webhooks add`, read by the delivery activity only, deleted with the
endpoint. It never reaches the database, workflow history or a log line.

`WebhookActivities` are plain `def` activities (httpx's sync client and hvac are synchronous; they run in the worker's
thread pool). `notice_targets` lists the account's endpoints; `deliver_webhook` sends one notice to one endpoint, so a
retry re-sends to that endpoint only. Each attempt is signed afresh (a new timestamp) and carries the same
`X-Lobstack-Delivery` id, by which the receiver drops duplicates. 2xx is delivered; 408, 429, 5xx, timeouts and
connection errors are WebhookUnavailable (retried); any other answer is WebhookRejected (not retried). Messages name
the endpoint id and the status, never the URL (a Slack URL is itself a credential) or a response body.
"""

from __future__ import annotations

import secrets
import time
from typing import Any

import httpx
import hvac
import hvac.exceptions as hv
from temporalio import activity

from activities.errors import WebhookRejected, WebhookUnavailable
from activities.registry import _translate_errors
from activities.secrets.errors import vault_errors
from activities.secrets.settings import VaultSettings
from contracts.webhooks import (
    DELIVERY_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    NoticeTargets,
    WebhookDelivery,
    encode,
    generic_body,
    sign,
    slack_body,
    ui_link,
    validate_account,
)
from store.webhooks import WebhookStore

__all__ = [
    "DEFAULT_UI_URL",
    "SIGNING_SECRET",
    "SLACK_URL",
    "WebhookActivities",
    "WebhookSecrets",
    "new_signing_secret",
]

KV_WEBHOOKS_PREFIX = "lobstack-webhooks/"
# `temporal server start-dev`'s Web UI (what `lobstack dev` runs) when LOBSTACK_UI_URL does not say otherwise.
DEFAULT_UI_URL = "http://localhost:8233"
_RETRIED_STATUSES = {408, 429}
# The fields of an endpoint's Vault secret: the generic format's signing secret, or the Slack URL itself.
SIGNING_SECRET = "signing_secret"  # noqa: S105 - the KV field name, not a secret
SLACK_URL = "url"


def new_signing_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(32)


class WebhookSecrets:
    """The signing secrets in Vault's KV v2 mount (hvac, synchronous)."""

    def __init__(self, settings: VaultSettings, *, client: hvac.Client | None = None) -> None:
        self.settings = settings
        self._client = client or settings.client()

    def path(self, account_id: str, endpoint_id: str) -> str:
        validate_account(account_id)
        if not endpoint_id.replace("-", "").isalnum():
            raise WebhookRejected(f"webhook endpoint id {endpoint_id[:40]!r} is not one of ours")
        return f"{KV_WEBHOOKS_PREFIX}{account_id}/{endpoint_id}"

    def store(self, account_id: str, endpoint_id: str, fields: dict[str, str]) -> None:
        path = self.path(account_id, endpoint_id)
        with vault_errors("write", f"{self.settings.kv_mount}/data/{path}"):
            self._client.secrets.kv.v2.create_or_update_secret(path, fields, mount_point=self.settings.kv_mount)

    def read(self, account_id: str, endpoint_id: str, field: str = SIGNING_SECRET) -> str | None:
        """One field of the endpoint's secret: SIGNING_SECRET (generic) or SLACK_URL; None when there is none."""
        path = self.path(account_id, endpoint_id)
        with vault_errors("read", f"{self.settings.kv_mount}/data/{path}"):
            try:
                data = self._client.secrets.kv.v2.read_secret_version(
                    path, mount_point=self.settings.kv_mount, raise_on_deleted_version=True
                )
            except hv.InvalidPath:
                return None  # removed with its endpoint, or never written
        value = data["data"]["data"].get(field)
        return value if isinstance(value, str) else None

    def delete(self, account_id: str, endpoint_id: str) -> None:
        path = self.path(account_id, endpoint_id)
        with vault_errors("delete", f"{self.settings.kv_mount}/metadata/{path}"):
            self._client.secrets.kv.v2.delete_metadata_and_all_versions(path, mount_point=self.settings.kv_mount)

    def close(self) -> None:
        self._client.adapter.close()


class WebhookActivities:
    def __init__(
        self,
        store: WebhookStore,
        secrets: WebhookSecrets,
        *,
        ui_url: str = DEFAULT_UI_URL,
        namespace: str = "default",
        timeout_s: float = 10.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.store = store
        self.secrets = secrets
        self.ui_url = ui_url or DEFAULT_UI_URL
        self.namespace = namespace
        self._http = httpx.Client(timeout=timeout_s, transport=transport, follow_redirects=False)

    def close(self) -> None:
        self._http.close()

    @activity.defn
    def notice_targets(self, targets: NoticeTargets) -> NoticeTargets:
        """The account's endpoint ids (none: nothing to deliver)."""
        with _translate_errors("notice_targets"):
            found = self.store.endpoints(targets.account_id)
        return NoticeTargets(targets.account_id, [e.endpoint_id for e in found])

    @activity.defn
    def deliver_webhook(self, delivery: WebhookDelivery) -> int:
        """POST one notice to one endpoint; returns the receiver's status (0: the endpoint was removed meanwhile)."""
        notice = delivery.notice
        with _translate_errors("deliver_webhook"):
            endpoint = self.store.get(notice.account_id, delivery.endpoint_id)
        if endpoint is None:
            activity.logger.info("webhook %s was removed; notice %s not sent", delivery.endpoint_id, notice.notice_id)
            return 0
        link = ui_link(self.ui_url, self.namespace, notice.workflow_id, notice.run_id)
        headers = {"Content-Type": "application/json", DELIVERY_HEADER: notice.notice_id}
        url = endpoint.url
        if endpoint.format == "slack":
            body = encode(slack_body(notice, ui_url=link))
            url = self.secrets.read(endpoint.account_id, endpoint.endpoint_id, SLACK_URL) or ""
            if not url:
                raise WebhookRejected(f"webhook {endpoint.endpoint_id}: no Slack URL in Vault (add it again)")
        else:
            body = encode(generic_body(notice, ui_url=link))
            secret = self.secrets.read(endpoint.account_id, endpoint.endpoint_id)
            if not secret:
                raise WebhookRejected(f"webhook {endpoint.endpoint_id}: no signing secret in Vault (add it again)")
            stamp = int(time.time())
            headers[TIMESTAMP_HEADER] = str(stamp)
            headers[SIGNATURE_HEADER] = sign(secret, stamp, body)
        return self._post(endpoint.endpoint_id, url, body, headers)

    def _post(self, endpoint_id: str, url: str, body: bytes, headers: dict[str, Any]) -> int:
        what = f"webhook {endpoint_id}"
        try:
            answer = self._http.post(url, content=body, headers=headers)
        except httpx.TimeoutException:
            raise WebhookUnavailable(f"{what}: timed out") from None
        except httpx.TransportError as exc:
            raise WebhookUnavailable(f"{what}: connection failed ({type(exc).__name__})") from None
        status = answer.status_code
        if 200 <= status < 300:
            return status
        if status >= 500 or status in _RETRIED_STATUSES:
            raise WebhookUnavailable(f"{what}: answered HTTP {status}")
        raise WebhookRejected(f"{what}: answered HTTP {status}; not retried")
