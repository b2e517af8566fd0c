"""A warm pool VM's bridge, between its own introduction and its agent's: read the claim, make the agent's config.

The pool identity's token can read one path, the slot's claim (`contracts.pool.claim_path`). The bridge reads it every
`claim_poll_s`, and at once when poked (`POST /claim`), never more often than `MIN_CLAIM_READ_GAP_S`. The claim holds
the agent's identity fields (`contracts.pool.CLAIM_FIELDS`) and becomes the agent's BootstrapConfig: the pool VM's
own config with those fields and no pool slot, so listen settings, the agent socket and timings stay as booted.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import hvac
import hvac.exceptions as hv
import requests

from bridge.introduction import VaultUnreachable
from contracts.bootstrap import BootstrapConfig
from contracts.identifiers import is_agent_id, kv_prefix, vault_name
from contracts.pool import CLAIM_FIELDS, claim_path

# However many pokes arrive, the bridge reads its claim at most this often (4 Vault reads a second).
MIN_CLAIM_READ_GAP_S = 0.25

REASON_WAITING = "pool VM waiting for a claim"


class PoolIdentityLost(Exception):
    """The pool token no longer works (the pool identity was destroyed, or its token expired): no claim can come."""


class ClaimInvalid(Exception):
    """The claim does not describe an agent's bootstrap; the message names the field, never a value."""


def read_claim(client: hvac.Client, config: BootstrapConfig) -> dict[str, Any] | None:
    """The slot's claim, or None while there is none. Raises PoolIdentityLost or VaultUnreachable."""
    path = claim_path(config.pool_slot)
    try:
        resp = client.secrets.kv.v2.read_secret_version(
            path, mount_point=config.kv_mount, raise_on_deleted_version=True
        )
    except hv.InvalidPath:
        return None  # not claimed yet
    except (hv.Forbidden, hv.Unauthorized) as exc:
        raise PoolIdentityLost(
            f"pool identity no longer valid: vault refused reading the claim ({type(exc).__name__})"
        ) from exc
    except (hv.VaultError, requests.exceptions.RequestException) as exc:
        raise VaultUnreachable(f"vault read of the claim failed: {type(exc).__name__}") from exc
    data = (resp.get("data") or {}).get("data")
    return dict(data) if isinstance(data, dict) else None


def agent_config(pool: BootstrapConfig, claim: dict[str, Any]) -> BootstrapConfig:
    """The agent's bootstrap: the pool VM's own config with the claim's identity fields and no pool slot."""
    fields: dict[str, str] = {}
    for name in CLAIM_FIELDS:
        value = claim.get(name, "")
        if not isinstance(value, str):
            raise ClaimInvalid(f"claim rejected: {name} is not a string")
        fields[name] = value
    agent_id = fields["agent_id"]
    if not is_agent_id(agent_id):
        raise ClaimInvalid("claim rejected: agent_id is not an agent id")
    for name in ("role_id", "wrapped_secret_id", "approle_mount", "kv_mount"):
        if not fields[name]:
            raise ClaimInvalid(f"claim rejected: {name} is empty")
    # The wrapped SecretID must have been created for this agent's role: the introduction checks Vault agrees.
    expected = f"auth/{fields['approle_mount']}/role/{vault_name(agent_id)}/secret-id"
    if fields["expected_creation_path"] != expected:
        raise ClaimInvalid("claim rejected: expected_creation_path is not the agent's role")
    fields["kv_prefix"] = fields["kv_prefix"] or kv_prefix(agent_id)
    fields["gateway_url"] = fields["gateway_url"] or pool.gateway_url
    return dataclasses.replace(pool, **fields, pool_slot="")  # type: ignore[arg-type]  # all str fields
