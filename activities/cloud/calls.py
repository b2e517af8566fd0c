"""Counting the HTTP requests the cloud adapters make, per activity and per adapter.

Every request an adapter sends (including ones that then time out or lose their connection) is recorded twice:
in the adapter's own `ProviderCalls` total, for the worker's lifetime, and in the `CallCounter` of the innermost
`counting()` block around it, so an activity can report exactly what it cost against the provider's API budget:

    with counting() as calls:
        vm = provider.create(request, bootstrap)
    activity.logger.info("create took %d API calls", calls.total)

The current counter lives in a `contextvars.ContextVar`: sync activities run in worker threads, each with its own
context, so concurrent activities never count each other's requests.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field


@dataclass
class CallCounter:
    """Requests made while this counter was current, in total and per provider."""

    total: int = 0
    by_provider: dict[str, int] = field(default_factory=dict)
    # A nested `counting()` also counts into the enclosing one, so an outer total stays complete.
    parent: CallCounter | None = field(default=None, repr=False)

    def add(self, provider: str) -> None:
        counter: CallCounter | None = self
        while counter is not None:
            counter.total += 1
            counter.by_provider[provider] = counter.by_provider.get(provider, 0) + 1
            counter = counter.parent


_current: ContextVar[CallCounter | None] = ContextVar("lobstack_cloud_calls", default=None)


@contextmanager
def counting() -> Iterator[CallCounter]:
    """Count every adapter request made inside the block (in this thread / context)."""
    counter = CallCounter(parent=_current.get())
    token = _current.set(counter)
    try:
        yield counter
    finally:
        _current.reset(token)


def current() -> CallCounter | None:
    return _current.get()


class ProviderCalls:
    """One adapter's request count: a thread-safe running total, plus the current activity's counter."""

    def __init__(self, provider: str) -> None:
        self.provider = provider
        self._lock = threading.Lock()
        self._total = 0

    def record(self) -> None:
        with self._lock:
            self._total += 1
        counter = _current.get()
        if counter is not None:
            counter.add(self.provider)

    @property
    def total(self) -> int:
        with self._lock:
            return self._total


__all__ = ["CallCounter", "ProviderCalls", "counting", "current"]
