"""The boundary where hvac and requests errors become ours, most specific first.

Messages carry the action, the Vault path and the error class only: hvac's own messages include response bodies and
URLs, so they stay on the chained `__cause__` and never in our text.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import hvac.exceptions as hv
import requests

from activities.errors import SecretsError, SecretsRejected, SecretsUnavailable

# Server-side trouble that another attempt may outlive (sealed, standby, overloaded, restarting).
_TRANSIENT: tuple[type[hv.VaultError], ...] = (
    hv.VaultDown,
    hv.VaultNotInitialized,
    hv.InternalServerError,
    hv.BadGateway,
    hv.RateLimitExceeded,
    hv.UnexpectedError,
)
# Our request or credentials are wrong: retrying the same call cannot help.
_PERMANENT: tuple[type[hv.VaultError], ...] = (
    hv.Forbidden,
    hv.Unauthorized,
    hv.InvalidRequest,
    hv.InvalidPath,
    hv.UnsupportedOperation,
    hv.PreconditionFailed,
    hv.ParamValidationError,
)


def translate(exc: BaseException, action: str, path: str) -> SecretsError:
    what = f"vault {action} {path}"
    if isinstance(exc, requests.exceptions.Timeout):
        return SecretsUnavailable(f"{what}: timed out")
    if isinstance(exc, requests.exceptions.ConnectionError):
        return SecretsUnavailable(f"{what}: connection failed")
    if isinstance(exc, requests.exceptions.RequestException):
        return SecretsUnavailable(f"{what}: request failed ({type(exc).__name__})")
    if isinstance(exc, _TRANSIENT):
        return SecretsUnavailable(f"{what}: server unavailable ({type(exc).__name__})")
    if isinstance(exc, _PERMANENT):
        return SecretsRejected(f"{what}: refused ({type(exc).__name__})")
    if isinstance(exc, hv.VaultError):
        return SecretsUnavailable(f"{what}: unexpected Vault error ({type(exc).__name__})")
    return SecretsUnavailable(f"{what}: {type(exc).__name__}")


@contextmanager
def vault_errors(action: str, path: str) -> Iterator[None]:
    """Translate anything hvac or requests raises inside the block; our own errors pass through."""
    try:
        yield
    except SecretsError:
        raise
    except (hv.VaultError, requests.exceptions.RequestException) as exc:
        raise translate(exc, action, path) from exc


def vault_path_exists(path: str, read: Callable[[], object]) -> bool:
    """Whether `read()` finds something at `path` (InvalidPath: nothing there); other Vault failures are classified."""
    with vault_errors("read", path):
        try:
            read()
        except hv.InvalidPath:
            return False
    return True
