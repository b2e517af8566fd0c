"""`make chaos`: lifecycles under injected faults, then proof that every one ended and nothing was left behind."""
