"""The activities: classes given their clients at construction, registered by the worker as bound methods.

- `cloud`: VMs through the `CloudProvider` adapters (`CloudActivities`);
- `secrets`: per-agent Vault state through hvac (`SecretsActivities`, `AgentVault`);
- `health` (`HealthActivities`), `registry` (`RegistryActivities`), `approvals` (`ApprovalActivities`),
  `maintenance` (rotation, orphan sweep, fleet health, agent data);
- `errors`: the one exception tree that says what is retryable; `polling`: the bounded-overshoot poll schedule.

This `__init__` imports nothing, so a workflow's reference to one activity class loads only that class's module.
"""

__all__ = ["approvals", "cloud", "errors", "health", "maintenance", "polling", "registry", "secrets"]
