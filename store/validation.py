"""Checks a Transition before it is written: the audit trail is append-only, so a bad or secret value stays for good."""

from __future__ import annotations

import re
from datetime import datetime

from contracts.models import AgentState, Transition
from contracts.spec import SpecError, validate_agent_id

__all__ = ["DETAIL_VALUE_MAX", "validate_transition"]

DETAIL_VALUE_MAX = 256
DETAIL_KEY_MAX = 64
DETAILS_MAX = 32

# Whole words of a details key that mean "this carries a credential". `secrets` (a count) or `monkey` pass.
_SECRET_WORDS = frozenset({"token", "secret", "password", "key"})
# Splits snake_case, kebab-case, dotted and camelCase keys into words: "vaultAPIKey" -> vault, API, Key.
_WORDS = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+")
# Vault / OpenBao token shapes (hvs., hvb., hvr. and the legacy s., b., r. prefixes): refused whatever the key says,
# anywhere in the value ("token hvs.…" or one with a trailing space is still a token).
_TOKEN_VALUE = re.compile(r"(?<![A-Za-z0-9_.-])(?:hv[sbr]|[sbr])\.[A-Za-z0-9_-]{20,}")
# PostgreSQL text and JSON cannot hold NUL: refused here so SQLite refuses it too, with a message naming the field.
_NUL = "\x00"

# Column lengths, checked here so SQLite (which ignores VARCHAR lengths) refuses what PostgreSQL would.
_LIMITS = {"event_key": 200, "account_id": 40, "action": 64, "actor": 128, "name": 63, "provider": 32, "region": 32}
_LIMITS |= {"size": 32, "vm_id": 128, "address": 255, "health": 32}
_REQUIRED = ("event_key", "account_id", "action")


def _check_str(t: Transition, field_name: str, limit: int) -> None:
    value = getattr(t, field_name)
    if not isinstance(value, str):
        raise SpecError(field_name, "must be a string")
    if field_name in _REQUIRED and not value:
        raise SpecError(field_name, "is required")
    if len(value) > limit:
        raise SpecError(field_name, f"is {len(value)} characters long; at most {limit} are allowed")
    if _NUL in value:
        raise SpecError(field_name, "must not contain NUL characters")


def _secret_words(key: str) -> set[str]:
    return {word.lower() for word in _WORDS.findall(key)} & _SECRET_WORDS


def _check_details(details: object) -> None:
    if not isinstance(details, dict):
        raise SpecError("details", "must be an object of short strings")
    if len(details) > DETAILS_MAX:
        raise SpecError("details", f"has {len(details)} entries; at most {DETAILS_MAX} are allowed")
    for key, value in details.items():
        if not isinstance(key, str) or not key or len(key) > DETAIL_KEY_MAX:
            raise SpecError("details", f"keys must be strings of 1-{DETAIL_KEY_MAX} characters, got {key!r:.80}")
        field_name = f"details.{key}"
        # The message names the key, never the value: the value may be the secret this guard is here to stop.
        if words := _secret_words(key):
            carriers = ", ".join(sorted(words))
            raise SpecError(field_name, f"looks like a secret carrier ({carriers}); audit details never hold secrets")
        if not isinstance(value, str):
            raise SpecError(field_name, f"must be a string, got {type(value).__name__}")
        if len(value) > DETAIL_VALUE_MAX:
            raise SpecError(field_name, f"is {len(value)} characters long; at most {DETAIL_VALUE_MAX} are allowed")
        if _TOKEN_VALUE.search(value):
            raise SpecError(field_name, "looks like a Vault token; audit details never hold secrets")
        if _NUL in key or _NUL in value:
            raise SpecError(field_name, "must not contain NUL characters")


def validate_transition(t: Transition) -> None:
    """Raise SpecError (a ValueError) naming the first bad field; return quietly otherwise."""
    if not isinstance(t, Transition):
        raise TypeError(f"expected a Transition, got {type(t).__name__}")
    validate_agent_id(t.agent_id)
    for field_name, limit in _LIMITS.items():
        _check_str(t, field_name, limit)
    try:
        AgentState(t.state)
    except ValueError:
        allowed = ", ".join(state.value for state in AgentState)
        raise SpecError("state", f"{t.state!r:.40} is not allowed; choose one of: {allowed}") from None
    if not isinstance(t.reason, str):
        raise SpecError("reason", "must be a string")
    if _NUL in t.reason:
        raise SpecError("reason", "must not contain NUL characters")
    if t.at is not None and (not isinstance(t.at, datetime) or t.at.utcoffset() is None):
        raise SpecError("at", "must be a timezone-aware datetime (UTC)")
    _check_details(t.details)
    threshold = t.unhealthy_threshold
    if isinstance(threshold, bool) or not isinstance(threshold, int) or not 0 <= threshold <= 100:
        raise SpecError("unhealthy_threshold", "must be a whole number from 0 (keep the row's) to 100")
