"""The one exception tree of the activities, and the one place that turns it into Temporal failures.

    LobstackError
    ├── ProviderError            cloud or local VM provider
    │   ├── ProviderUnavailable      5xx, timeout, connection refused          retryable
    │   ├── ProviderRateLimited      429; retry after the provider's reset      retryable (after `retry_after_s`)
    │   ├── ProviderCapacityError    no capacity / location unavailable         not retryable here (failover)
    │   ├── ProviderRejected         invalid input, auth, VM stopped            not retryable
    │   └── VMLeftBehind             verification found the agent's VM          retryable (cleanup runs again)
    ├── SecretsError             Vault / OpenBao
    │   ├── SecretsUnavailable       sealed, 5xx, connection errors             retryable
    │   ├── SecretsRejected          403, 400: configuration or policy bug      not retryable
    │   └── SecretsLeftBehind        verification found residue                 retryable (cleanup runs again)
    ├── RegistryError            registry database (SQLite / PostgreSQL)
    │   ├── RegistryUnavailable      connection refused/lost, locked, timeout   retryable
    │   └── RegistryRejected         invalid transition, integrity, data error  not retryable
    └── AgentError               the agent itself
        ├── AgentUnhealthy           health deadline passed                     not retryable
        └── AgentCompromised         bootstrap credential already used          not retryable

Messages land in workflow history: they name codes, ids and paths, never tokens, secret values or response bodies.
"""

from __future__ import annotations

from datetime import timedelta
from typing import ClassVar

from temporalio.exceptions import ApplicationError


class LobstackError(Exception):
    retryable: ClassVar[bool] = False

    def to_application_error(self) -> ApplicationError:
        return ApplicationError(str(self), type=type(self).__name__, non_retryable=not self.retryable)


class ProviderError(LobstackError):
    pass


class ProviderUnavailable(ProviderError):
    retryable = True


class ProviderRateLimited(ProviderError):
    retryable = True

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
    pass


class ProviderRejected(ProviderError):
    pass


class VMLeftBehind(ProviderError):
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
