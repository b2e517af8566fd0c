"""Approval notices sent to webhooks: what a notice carries, its two wire formats, and how it is signed and verified.

Standard library only: the worker builds and signs the bodies, a receiver (or a test) verifies them with the same
functions. Generic bodies are JSON signed with HMAC-SHA256 over "<timestamp>.<body>":

    X-Lobstack-Timestamp: 1764871234
    X-Lobstack-Signature: v1=<hex HMAC-SHA256(secret, "1764871234." + body)>
    X-Lobstack-Delivery:  <one id per notice, the same on every retry>

A receiver recomputes the signature over the raw body, compares in constant time, and refuses a timestamp older than a
few minutes (`verify_signature`), so a captured request cannot be replayed later. Slack's format is an incoming-webhook
body (`text` and `blocks`); Slack authenticates by the secret URL, so it is not signed.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal
from urllib.parse import urlsplit

from contracts.identifiers import AGENT_ID
from contracts.spec import ACCOUNT_ID_RULE, SpecError

__all__ = [
    "DELIVERY_HEADER",
    "NOTICE_TYPES",
    "SIGNATURE_HEADER",
    "STALE_AFTER_S",
    "TIMESTAMP_HEADER",
    "WEBHOOK_FORMATS",
    "ApprovalNotice",
    "NoticeTargets",
    "WebhookDelivery",
    "WebhookEndpoint",
    "WebhookFormat",
    "encode",
    "generic_body",
    "sign",
    "slack_body",
    "ui_link",
    "url_in_registry",
    "validate_account",
    "validate_webhook_format",
    "validate_webhook_url",
    "verify_signature",
]

WebhookFormat = Literal["generic", "slack"]
WEBHOOK_FORMATS: tuple[str, ...] = ("generic", "slack")
NOTICE_TYPES = (
    "approval.pending",
    "approval.reminder",
    "approval.escalated",
    "approval.decided",
    "approval.expired",
)
TIMESTAMP_HEADER = "X-Lobstack-Timestamp"
SIGNATURE_HEADER = "X-Lobstack-Signature"
DELIVERY_HEADER = "X-Lobstack-Delivery"
# A signed request older (or further in the future) than this is refused by `verify_signature`.
STALE_AFTER_S = 300
URL_MAX = 2000


def validate_account(account_id: str) -> str:
    """Account ids name Vault paths and appear in messages: the spec's rule, checked before anything is stored."""
    if not isinstance(account_id, str) or not AGENT_ID.fullmatch(account_id):
        raise SpecError("account", f"must be {ACCOUNT_ID_RULE}")
    return account_id


def validate_webhook_url(url: str) -> str:
    """An absolute http(s) URL with a host, no credentials in it; raises SpecError("url", ...) otherwise."""
    if not isinstance(url, str) or not url.strip():
        raise SpecError("url", "is required: an http:// or https:// address")
    if len(url) > URL_MAX:
        raise SpecError("url", f"must be at most {URL_MAX} characters")
    if any(ch.isspace() or ord(ch) < 32 for ch in url):
        raise SpecError("url", "must not contain spaces or control characters")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - a malformed port raises here
    except ValueError:
        raise SpecError("url", "is not a valid URL; use http://host[:port]/path or https://...") from None
    if parts.scheme not in ("http", "https"):
        raise SpecError("url", "must start with http:// or https://", rule="must be an http:// or https:// URL")
    if not parts.hostname:
        raise SpecError("url", "must name a host, as in https://hooks.example.com/lobstack")
    if parts.username or parts.password:
        raise SpecError("url", "must not carry a user or password; the generic format is signed instead")
    return url


def url_in_registry(url: str, fmt: str) -> str:
    """What the registry keeps of an endpoint's URL. A Slack incoming-webhook URL is itself the credential, so it is
    kept in Vault and the registry holds only its host and a fingerprint (to find it again by URL)."""
    if fmt != "slack":
        return url
    parts = urlsplit(url)
    digest = hashlib.sha256(url.encode()).hexdigest()[:24]
    return f"{parts.scheme}://{parts.hostname}/...#sha256={digest}"


def validate_webhook_format(fmt: str) -> WebhookFormat:
    if fmt == "generic":
        return "generic"
    if fmt == "slack":
        return "slack"
    raise SpecError("format", f"{fmt!r:.40} is not allowed; use one of: {', '.join(WEBHOOK_FORMATS)}")


@dataclass(frozen=True)
class WebhookEndpoint:
    """One configured receiver of an account's approval notices (the registry's `webhook_endpoints` row); for Slack,
    `url` is `url_in_registry`'s form and the URL itself is in Vault."""

    endpoint_id: str
    account_id: str
    url: str
    format: str
    created_at: datetime


@dataclass
class ApprovalNotice:
    """What a workflow that waits for a person announces; the activity adds the Web UI link and signs it.

    `notice_id` names this notice (workflow, run, sequence): receivers deduplicate retries by it.
    """

    notice_id: str
    type: str
    kind: str  # agent or tool
    account_id: str
    agent_id: str
    workflow_id: str
    run_id: str
    summary: str
    approvers: list[str] = field(default_factory=list)
    deadline: datetime | None = None
    # For approval.decided / approval.expired: approved, rejected, expired or cancelled; who and why.
    decision: str = ""
    decided_by: str = ""
    reason: str = ""
    cli: str = ""
    cli_reject: str = ""


@dataclass
class NoticeTargets:
    """Which endpoints of `account_id` a notice goes to (answered by the webhook activities)."""

    account_id: str
    endpoint_ids: list[str] = field(default_factory=list)


@dataclass
class WebhookDelivery:
    endpoint_id: str
    notice: ApprovalNotice


def ui_link(ui_url: str, namespace: str, workflow_id: str, run_id: str) -> str:
    return f"{ui_url.rstrip('/')}/namespaces/{namespace}/workflows/{workflow_id}/{run_id}"


def generic_body(notice: ApprovalNotice, *, ui_url: str) -> dict[str, Any]:
    """The generic JSON body; `ui_url` is the deep link to the workflow's page in the Web UI."""
    body: dict[str, Any] = {
        "type": notice.type,
        "id": notice.notice_id,
        "kind": notice.kind,
        "account": notice.account_id,
        "agent_id": notice.agent_id,
        "workflow_id": notice.workflow_id,
        "run_id": notice.run_id,
        "summary": notice.summary,
        "approvers": list(notice.approvers),
        "deadline": notice.deadline.isoformat() if notice.deadline else None,
        "ui_url": ui_url,
        "cli": notice.cli,
        "cli_reject": notice.cli_reject,
    }
    if notice.decision:
        body["decision"] = {"outcome": notice.decision, "by": notice.decided_by, "reason": notice.reason}
    return body


_HEADLINES = {
    "approval.pending": "Approval needed",
    "approval.reminder": "Reminder: approval still needed",
    "approval.escalated": "Escalated: approval still needed",
    "approval.decided": "Approval decided",
    "approval.expired": "Approval expired",
}


def slack_body(notice: ApprovalNotice, *, ui_url: str) -> dict[str, Any]:
    """A Slack incoming-webhook body: `text` for notifications, `blocks` with the link and the command."""
    headline = _HEADLINES.get(notice.type, notice.type)
    lines = [f"*{headline}* ({notice.kind}): {notice.summary}"]
    if notice.decision:
        who = f" by {notice.decided_by}" if notice.decided_by else ""
        why = f": {notice.reason}" if notice.reason else ""
        lines.append(f"Outcome: *{notice.decision}*{who}{why}")
    else:
        if notice.approvers:
            lines.append(f"Approvers: {', '.join(notice.approvers)}")
        if notice.deadline:
            lines.append(f"Deadline: {notice.deadline:%Y-%m-%d %H:%M} UTC")
    text = "\n".join(lines)
    blocks: list[dict[str, Any]] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": text}},
        {"type": "section", "text": {"type": "mrkdwn", "text": f"<{ui_url}|Open in the Temporal Web UI>"}},
    ]
    if not notice.decision and notice.cli:
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": f"```{notice.cli}```"}})
    return {"text": f"{headline}: {notice.summary} {ui_url}", "blocks": blocks}


def encode(body: dict[str, Any]) -> bytes:
    """The exact bytes sent and signed."""
    return json.dumps(body, separators=(",", ":"), sort_keys=True).encode()


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """`v1=<hex>`: HMAC-SHA256 with `secret` over "<timestamp>.<body>"."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"v1={mac.hexdigest()}"


def verify_signature(
    secret: str, *, timestamp: str, signature: str, body: bytes, now: float, stale_after_s: int = STALE_AFTER_S
) -> str:
    """Why a received request is not authentic, or "" when it is: the timestamp must be recent, the signature match."""
    try:
        sent = int(timestamp)
    except ValueError:
        return f"{TIMESTAMP_HEADER} is not a whole number of seconds"
    if abs(now - sent) > stale_after_s:
        return f"{TIMESTAMP_HEADER} is more than {stale_after_s}s away from now (a replay?)"
    if not hmac.compare_digest(sign(secret, sent, body), signature):
        return f"{SIGNATURE_HEADER} does not match the body"
    return ""
