"""Registry activities: record lifecycle transitions in the database, translating its errors into ours."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import exc as sa_exc
from temporalio import activity

from activities.errors import RegistryRejected, RegistryUnavailable
from contracts.models import Transition
from store import Registry

__all__ = ["RegistryActivities"]

_MESSAGE_MAX = 300


def _describe(exc: BaseException) -> str:
    """Class and first line of the driver's message: no SQL, no parameters (they can reach workflow history)."""
    cause = exc.orig if isinstance(exc, sa_exc.DBAPIError) and exc.orig is not None else exc
    first_line = (str(cause).strip().splitlines() or [""])[0]
    text = f"{type(cause).__name__}: {first_line}" if first_line else type(cause).__name__
    return text if len(text) <= _MESSAGE_MAX else text[: _MESSAGE_MAX - 3] + "..."


@contextmanager
def _translate_errors(operation: str) -> Iterator[None]:
    """Most specific first: what a retry can fix is RegistryUnavailable, what it cannot is RegistryRejected."""
    try:
        yield
    except sa_exc.DBAPIError as exc:
        # OperationalError: refused, lost, "database is locked", "unable to open database file".
        # InterfaceError: the driver's connection is unusable. connection_invalidated: the pool dropped it.
        if exc.connection_invalidated or isinstance(exc, sa_exc.OperationalError | sa_exc.InterfaceError):
            raise RegistryUnavailable(f"registry {operation}: database unavailable: {_describe(exc)}") from exc
        # IntegrityError other than the duplicate event (that one is ON CONFLICT DO NOTHING), DataError, SQL bugs.
        raise RegistryRejected(f"registry {operation}: refused by the database: {_describe(exc)}") from exc
    except (sa_exc.DisconnectionError, sa_exc.TimeoutError) as exc:
        # TimeoutError is the pool's "no connection free in time".
        raise RegistryUnavailable(f"registry {operation}: database unavailable: {_describe(exc)}") from exc
    except ValueError as exc:
        # SpecError from store.validation: names the bad field, never its value.
        raise RegistryRejected(f"registry {operation}: {exc}") from exc
    except sa_exc.SQLAlchemyError as exc:
        raise RegistryRejected(f"registry {operation}: {_describe(exc)}") from exc


class RegistryActivities:
    """Plain `def` activities: SQLAlchemy is synchronous, so they run in the worker's thread pool."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    @activity.defn
    def record_transition(self, t: Transition) -> bool:
        """Write `t` to the agent row and the audit trail; False when this event_key was already recorded."""
        with _translate_errors("record_transition"):
            return self.registry.record(t)
