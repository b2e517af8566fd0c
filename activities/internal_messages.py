"""The workers' key for sealing system messages, and the activity that checks a seal (contracts/internal_messages.py).

The key is LOBSTACK_INTERNAL_KEY (at least 32 characters), the same on every worker of a deployment and given to
nothing else: not the CLI, the gateway or the Web UI. Unset, each worker process makes a random one: enough when one
process runs both the fleet monitor and the lifecycles (`lobstack dev`, the tests), refused health signals otherwise.
"""

from __future__ import annotations

import functools
import os
import secrets
from collections.abc import Mapping

from temporalio import activity

from contracts.internal_messages import SealCheck, seal_matches

__all__ = ["INTERNAL_KEY_ENV", "InternalKeyError", "InternalMessageActivities", "internal_key"]

INTERNAL_KEY_ENV = "LOBSTACK_INTERNAL_KEY"
_MIN_KEY_CHARS = 32


class InternalKeyError(ValueError):
    pass


@functools.cache
def _process_key() -> bytes:
    return secrets.token_bytes(32)


def internal_key(env: Mapping[str, str] | None = None, *, required: bool = False) -> bytes:
    """The configured key, or this process's random one when none is configured and none is `required`
    (production: several workers each with a key of their own would refuse one another's health signals)."""
    env = os.environ if env is None else env
    configured = env.get(INTERNAL_KEY_ENV, "")
    if not configured and required:
        raise InternalKeyError(f"{INTERNAL_KEY_ENV} is required when LOBSTACK_ENV=production (32+ random characters)")
    if not configured:
        return _process_key()
    if len(configured) < _MIN_KEY_CHARS:
        raise InternalKeyError(f"{INTERNAL_KEY_ENV} must be at least {_MIN_KEY_CHARS} characters")
    return configured.encode()


class InternalMessageActivities:
    def __init__(self, key: bytes) -> None:
        self._key = key

    @activity.defn
    async def check_seal(self, check: SealCheck) -> bool:
        """True when the seal was made with the workers' key for this body, workflow and handler."""
        return seal_matches(self._key, check)
