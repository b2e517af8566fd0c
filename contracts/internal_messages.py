"""Seals on the messages only the system may send (`health_changed` from the fleet monitor).

Temporal tells a workflow nothing about who sent a signal: the `identity` the server stores in the history event is
whatever string the caller chose, and the workflow cannot read it anyway. A `sent_by` field alone would be a word
anyone can type. So a system message carries an HMAC-SHA256 over its body, the target workflow id and the handler
name, keyed with a secret only workers hold (LOBSTACK_INTERNAL_KEY): a person with a Temporal client, the CLI or the
Web UI cannot produce one, cannot move a seal to another agent or handler, and cannot replay an old one (the body's
`sent_at` must be later than the last sealed message the workflow accepted). The workflow checks the seal in a local
activity, so the key never enters workflow code or history and a key rotation cannot change how a history replays.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

__all__ = ["SEAL_FIELD", "SealCheck", "canonical", "seal", "seal_matches", "sealed_body", "sent_at_now"]

SEAL_FIELD = "seal"


@dataclass
class SealCheck:
    """What a workflow asks the seal check: the body as signed (`canonical`), where it arrived, and its seal."""

    workflow_id: str
    handler: str
    body: str
    seal: str


def canonical(body: Mapping[str, Any]) -> str:
    """The body without its seal, as one deterministic JSON text (sorted keys, no spaces)."""
    return json.dumps(
        {k: v for k, v in body.items() if k != SEAL_FIELD}, sort_keys=True, separators=(",", ":"), default=_jsonable
    )


def _jsonable(value: object) -> str:
    # Times as Temporal's JSON converter writes them, so the body reads back as the same dataclass.
    return value.isoformat() if isinstance(value, datetime) else str(value)


def seal(key: bytes, workflow_id: str, handler: str, body: str) -> str:
    message = "\n".join((workflow_id, handler, body)).encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def seal_matches(key: bytes, check: SealCheck) -> bool:
    return hmac.compare_digest(seal(key, check.workflow_id, check.handler, check.body), check.seal)


def sent_at_now() -> str:
    """A UTC time with a fixed width, so that later times compare greater as text."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def sealed_body(key: bytes, workflow_id: str, handler: str, body: Mapping[str, Any]) -> dict[str, Any]:
    """`body` as the system sends it: JSON values, a `sent_at` time and the seal over all of it."""
    plain: dict[str, Any] = json.loads(canonical(body))
    plain["sent_at"] = sent_at_now()
    plain[SEAL_FIELD] = seal(key, workflow_id, handler, canonical(plain))
    return plain
