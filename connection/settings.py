"""Where a process finds Temporal, from the environment, with embedded defaults for a laptop."""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class TemporalSettings:
    address: str = "127.0.0.1:7233"
    namespace: str = "default"

    @classmethod
    def from_env(cls) -> TemporalSettings:
        return cls(
            address=os.environ.get("TEMPORAL_ADDRESS", cls.address),
            namespace=os.environ.get("TEMPORAL_NAMESPACE", cls.namespace),
        )


__all__ = ["TemporalSettings"]
