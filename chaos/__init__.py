"""`make chaos`: lifecycles under injected faults, then proof that every one ended and nothing was left behind."""

__all__ = ["faults", "report", "run", "stack"]
