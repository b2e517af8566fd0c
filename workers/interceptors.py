"""Worker interceptors: the one place our exception tree becomes Temporal failures."""

from __future__ import annotations

from typing import Any

from temporalio.worker import (
    ActivityInboundInterceptor,
    ExecuteActivityInput,
    Interceptor,
)

from activities.errors import LobstackError


class _TranslateErrors(ActivityInboundInterceptor):
    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        try:
            return await super().execute_activity(input)
        except LobstackError as exc:
            # Retryable or not is decided by the class, on purpose, not by whoever caught it. `from None`: the SDK
            # exception underneath may quote a response body, and failures land in workflow history; our message
            # already names the provider, code and ids.
            raise exc.to_application_error() from None


class ErrorTranslation(Interceptor):
    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _TranslateErrors(next)
