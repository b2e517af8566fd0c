"""The one exception tree of the activities, and the one place that turns it into Temporal failures.

    LobstackError                                                           retryable  fails over  created nothing
    ├── ProviderError            cloud or local VM provider
    │   ├── ProviderUnavailable      5xx, timeout, connection refused           yes        yes         -
    │   ├── ProviderRateLimited      429 (retried after `retry_after_s`)        yes        yes         -
    │   ├── ProviderCapacityError    no capacity / location unavailable         -          yes         yes
    │   ├── PlanNotOffered           the location does not sell the size        -          yes         yes
    │   ├── ProviderRejected         invalid input, auth, VM stopped            -          -           yes
    │   ├── VMNameTaken              the VM's name is held by another VM        yes        yes         yes
    │   ├── VMLeftBehind             verification found the agent's VM          yes (cleanup runs again)
    │   ├── FirewallInUse            firewall still applied to a VM being gone  yes
    │   └── FirewallLeftBehind       verification found the agent's firewall    yes (cleanup runs again)
    ├── SecretsError             Vault / OpenBao
    │   ├── SecretsUnavailable       sealed, 5xx, connection errors             yes
    │   ├── SecretsRejected          403, 400: configuration or policy bug      -
    │   └── SecretsLeftBehind        verification found residue                 yes (cleanup runs again)
    ├── RegistryError            registry database (SQLite / PostgreSQL)
    │   ├── RegistryUnavailable      connection refused/lost, locked, timeout   yes
    │   └── RegistryRejected         invalid transition, integrity, data error  -
    ├── AgentError               the agent itself
    │   ├── AgentUnhealthy           health deadline passed                     -
    │   └── AgentCompromised         bootstrap credential already used          -
    ├── WebhookError             an approval notice's receiver
    │   ├── WebhookUnavailable       5xx, 408, 429, timeout, connection refused yes
    │   └── WebhookRejected          other 4xx, no signing secret in Vault      -
    └── AdmissionRefused         a quota or lifetime limit of the account      -

Each class decides, once, what its failure means to a caller:
- `retryable`: Temporal retries the activity (every attempt visible in history);
- `fails_over`: a create that fails with it at one placement moves on to the next placement;
- `created_nothing`: a create that fails with it made no VM (the create activity looked for the agent's VM before
  it asked, so no earlier attempt left one either), so cleanup need not look at that provider.
The workflow sees only the class name (`ApplicationError.type`); `error_class` maps it back to these properties.

Messages land in workflow history: they name codes, ids and paths, never tokens, secret values or response bodies.
"""

from __future__ import annotations

from datetime import timedelta
from typing import ClassVar

from temporalio.exceptions import ApplicationError


class LobstackError(Exception):
    retryable: ClassVar[bool] = False
    fails_over: ClassVar[bool] = False
    created_nothing: ClassVar[bool] = False
    # The account's limits refuse the agent: its lifecycle ends `rejected` with nothing made.
    refuses_agent: ClassVar[bool] = False

    def to_application_error(self) -> ApplicationError:
        return ApplicationError(str(self), type=type(self).__name__, non_retryable=not self.retryable)


class ProviderError(LobstackError):
    pass


class ProviderUnavailable(ProviderError):
    retryable = True
    fails_over = True


class ProviderRateLimited(ProviderError):
    retryable = True
    fails_over = True

    def __init__(self, message: str, *, retry_after_s: float) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s

    def to_application_error(self) -> ApplicationError:
        return ApplicationError(
            str(self),
            type=type(self).__name__,
            non_retryable=False,
            next_retry_delay=timedelta(seconds=max(self.retry_after_s, 0.1)),
        )


class ProviderCapacityError(ProviderError):
    fails_over = True
    created_nothing = True


class PlanNotOffered(ProviderError):
    """The provider's catalog does not sell the size in that location: never retried there, another placement may."""

    fails_over = True
    created_nothing = True


class ProviderRejected(ProviderError):
    created_nothing = True


class VMNameTaken(ProviderError):
    """A create refused because the VM's deterministic name is already used (Hetzner names are unique per project).

    Adapters raise it and nothing more; the create activity then looks for the agent's VM and adopts it (an earlier
    attempt made it and its answer was lost). Raised past the activity, the name is held by a VM that is not a live
    one of this agent: one still being deleted (free again within seconds, so retried), or one made outside Lobstack
    (then the next placement may serve the agent).
    """

    retryable = True
    fails_over = True
    created_nothing = True


class VMLeftBehind(ProviderError):
    retryable = True


class FirewallInUse(ProviderError):
    """A firewall delete refused because it is still applied to a VM (Hetzner `resource_in_use`).

    Firewalls are deleted only after the agent's VMs are verified gone, so the VM is on its way out: retried.
    """

    retryable = True


class FirewallLeftBehind(ProviderError):
    retryable = True


class SecretsError(LobstackError):
    pass


class SecretsUnavailable(SecretsError):
    retryable = True


class SecretsRejected(SecretsError):
    pass


class SecretsLeftBehind(SecretsError):
    retryable = True


class RegistryError(LobstackError):
    pass


class RegistryUnavailable(RegistryError):
    retryable = True


class RegistryRejected(RegistryError):
    pass


class AgentError(LobstackError):
    pass


class AgentUnhealthy(AgentError):
    pass


class AgentCompromised(AgentError):
    pass


class WebhookError(LobstackError):
    pass


class WebhookUnavailable(WebhookError):
    retryable = True


class WebhookRejected(WebhookError):
    pass


class AdmissionRefused(LobstackError):
    """The account's quotas or lifetime limits refuse the agent; nothing was created (store.account_limits)."""

    refuses_agent = True


def error_class(type_name: str) -> type[LobstackError] | None:
    """Our exception class named by a failure's `ApplicationError.type`, or None for any other failure."""
    pending: list[type[LobstackError]] = [LobstackError]
    while pending:
        cls = pending.pop()
        if cls.__name__ == type_name:
            return cls
        pending.extend(cls.__subclasses__())
    return None


__all__ = [
    "AdmissionRefused",
    "AgentCompromised",
    "AgentError",
    "AgentUnhealthy",
    "FirewallInUse",
    "FirewallLeftBehind",
    "LobstackError",
    "PlanNotOffered",
    "ProviderCapacityError",
    "ProviderError",
    "ProviderRateLimited",
    "ProviderRejected",
    "ProviderUnavailable",
    "RegistryError",
    "RegistryRejected",
    "RegistryUnavailable",
    "SecretsError",
    "SecretsLeftBehind",
    "SecretsRejected",
    "SecretsUnavailable",
    "VMLeftBehind",
    "VMNameTaken",
    "WebhookError",
    "WebhookRejected",
    "WebhookUnavailable",
    "error_class",
]
