"""What a bridge's `/health` says, and how the orchestrator reads it: one place for the health values.

The bridge answers `{"agent_id", "status", "secrets_loaded", "reason"}`. `status` is one of `BridgeStatus`;
"compromised" means its bootstrap credential was refused as already used, expired or minted for another path: someone
else may hold the agent's identity, waiting cannot help, and the lifecycle fails (and cleans up) at once.

A warm pool VM's bridge, waiting for its claim, answers for its slot (`agent_id` is the slot), "healthy" with
`secrets_loaded` 0 and `"pool": true` (`POOL_FIELD`): it has no secrets yet, and is ready to become an agent. Once
claimed it answers for the agent, like any bridge, and the field is gone.

Bridges older than the "compromised" status said it only in words: `status` "unhealthy" with a reason starting
"bootstrap credential rejected". `is_compromised` still reads that, so a VM booted from an old image is judged the same.
"""

from __future__ import annotations

from typing import Final, Literal, Protocol

BridgeStatus = Literal["starting", "healthy", "unhealthy", "compromised"]
BRIDGE_STATUSES: Final[tuple[BridgeStatus, ...]] = ("starting", "healthy", "unhealthy", "compromised")
HEALTHY: Final = "healthy"
COMPROMISED: Final = "compromised"
# Present (true) on /health of a pool VM waiting for its claim only.
POOL_FIELD: Final = "pool"
# What old bridges put in the reason instead of the status (read, never written).
LEGACY_COMPROMISED_REASON: Final = "bootstrap credential rejected"


class HealthAnswer(Protocol):
    """Anything carrying a bridge's status and reason: `contracts.models.HealthReport`, a parsed body."""

    @property
    def status(self) -> str: ...

    @property
    def reason(self) -> str: ...


def is_compromised(report: HealthAnswer) -> bool:
    """True when the bridge says its identity may be stolen: the status, or an old bridge's reason text."""
    return report.status == COMPROMISED or report.reason.startswith(LEGACY_COMPROMISED_REASON)


__all__ = [
    "BRIDGE_STATUSES",
    "COMPROMISED",
    "HEALTHY",
    "LEGACY_COMPROMISED_REASON",
    "POOL_FIELD",
    "BridgeStatus",
    "HealthAnswer",
    "is_compromised",
]
