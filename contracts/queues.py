"""Task queue names, shared by workers, workflows and clients."""

from __future__ import annotations

WORKFLOW_QUEUE = "lobstack"


def cloud_queue(provider: str, base: str = WORKFLOW_QUEUE) -> str:
    """One queue per provider, so each gets a rate limit sized to that provider's API budget.

    Derived from the workflow's own queue, so separate deployments (and tests) sharing a Temporal namespace never
    take each other's cloud work.
    """
    return f"{base}-cloud-{provider}"


__all__ = ["WORKFLOW_QUEUE", "cloud_queue"]
