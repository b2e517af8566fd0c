"""What every `lobstack` command shares: the one way to build a Temporal client, the exit statuses, and the one place
that turns an expected failure into one line on stderr.

Exit statuses (also in `lobstack --help` and the README):

    0    done
    1    failed or refused; the message says what failed and what to do
    2    bad input or configuration, refused before anything was contacted; the message names the field
    3    unavailable or not done in time; the request may still complete: check, then retry
    130  interrupted

An expected failure prints one line, `lobstack: error: ...`, and never a traceback, a worker's stack trace or a path
on the worker. LOBSTACK_DEBUG=1 adds the local traceback (redacted) above that line, for a bug report.
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from typing import TYPE_CHECKING, Any, NoReturn

from contracts.spec import AgentSpec, SpecError, validate_spec

if TYPE_CHECKING:
    from activities.secrets import VaultSettings
    from clients.client import LobstackClient

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_UNAVAILABLE = 3
EXIT_INTERRUPTED = 130

DEBUG_ENV = "LOBSTACK_DEBUG"

EXIT_STATUS_HELP = f"""\
exit status:
  {EXIT_OK}    done
  {EXIT_FAILED}    failed or refused: no such agent or approval, already ended, decision refused, Vault refused,
       agent not running, payloads encrypted with a key this CLI lacks, broken audit chain; the message says what
       failed and what to do
  {EXIT_USAGE}    bad input or configuration (an argument, LOBSTACK_CODEC_KEYS*, VAULT_ADDR, a database URL), refused
       before anything was contacted; the message names the field
  {EXIT_UNAVAILABLE}    unavailable or not done in time: Temporal, a worker for the task queue, Vault or the database
       cannot be reached, or --wait (or status --timeout) ran out of time; the request may still complete: check,
       then retry
  {EXIT_INTERRUPTED}  interrupted (Ctrl-C)
every error is one line on stderr, `lobstack: error: ...`; {DEBUG_ENV}=1 adds the traceback above it"""

_MAX_MESSAGE = 400


class CommandFailed(Exception):
    """An expected failure a command detected itself: `message` is the whole line to print, `status` the exit status."""

    def __init__(self, message: str, status: int = EXIT_FAILED) -> None:
        super().__init__(message)
        self.status = status


class Parser(argparse.ArgumentParser):
    """argparse with usage errors on one line, like every other error of the CLI (status 2)."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"lobstack: error: {message} (see `{self.prog} --help`)\n")


# --- the one Temporal client ---------------------------------------------------------------------------------------


def temporal_target(args: argparse.Namespace) -> tuple[str, str]:
    """`--address`/`--namespace`, else TEMPORAL_ADDRESS/TEMPORAL_NAMESPACE, else the defaults."""
    from connection.settings import TemporalSettings

    env = TemporalSettings.from_env()
    return getattr(args, "address", None) or env.address, getattr(args, "namespace", None) or env.namespace


def task_queue(args: argparse.Namespace) -> str:
    from contracts.queues import WORKFLOW_QUEUE

    return getattr(args, "task_queue", None) or os.environ.get("LOBSTACK_TASK_QUEUE") or WORKFLOW_QUEUE


async def connect(args: argparse.Namespace) -> LobstackClient:
    """The Temporal client of every command. Its data converter is the workers' one from the same LOBSTACK_CODEC_KEYS*
    (`connection.codec.data_converter_from_env`): without it an encrypted deployment's answers cannot be read.

    The keys are read before connecting, so a bad key configuration is refused (status 2) before anything is contacted.
    """
    from clients.client import LobstackClient
    from connection.codec import data_converter_from_env

    converter = data_converter_from_env()
    address, namespace = temporal_target(args)
    identity = getattr(args, "identity", None) or os.environ.get("TEMPORAL_IDENTITY") or None
    return await LobstackClient.connect(
        address, namespace=namespace, task_queue=task_queue(args), data_converter=converter, identity=identity
    )


# --- validation shared by the commands -----------------------------------------------------------------------------


def validate_account_id(account_id: object) -> None:
    """The spec's rule for account ids (SpecError naming `account_id`); an empty or blank account is refused."""
    validate_spec(AgentSpec(account_id=account_id, name="probe"))  # type: ignore[arg-type]  # any value: validated here


def vault_settings() -> VaultSettings:
    """VAULT_ADDR, VAULT_TOKEN and the LOBSTACK_VAULT_* options, refused (status 2) when missing or malformed."""
    from activities.secrets import VaultSettings

    if not os.environ.get("VAULT_ADDR", "").strip():
        raise SpecError("VAULT_ADDR", "is required: the address of Vault or OpenBao")
    if not os.environ.get("VAULT_TOKEN", "").strip():
        raise SpecError("VAULT_TOKEN", "is required: a token allowed to use the agents' Transit keys")
    try:
        return VaultSettings.from_env()
    except ValueError as err:
        raise SpecError("vault settings", str(err)) from None


def open_registry(url: str | None = None) -> Any:
    """The registry at `url`, else DATABASE_URL, else the default SQLite file; an unusable URL is refused (status 2)
    without echoing it (it may hold a password)."""
    from store import Registry, default_database_url

    try:
        return Registry.from_url(url or default_database_url())
    except ValueError as err:
        if isinstance(err, SpecError) or not str(err).startswith("DATABASE_URL:"):
            raise
        raise CommandFailed(f"{err} (check --database-url or DATABASE_URL)", EXIT_USAGE) from None


# --- failures ------------------------------------------------------------------------------------------------------


def report(err: BaseException, args: argparse.Namespace | None = None) -> int:
    """Print `lobstack: error: <one line>` for `err` and return its exit status (the traceback only with
    LOBSTACK_DEBUG=1)."""
    status, message = explain(err, args)
    if os.environ.get(DEBUG_ENV, "").strip() not in ("", "0"):
        from workers.redaction import redact

        sys.stderr.write(redact("".join(traceback.format_exception(err))))
    print(f"lobstack: error: {one_line(message)}", file=sys.stderr)
    return status


def one_line(text: str) -> str:
    flat = " ".join(str(text).split())
    return flat if len(flat) <= _MAX_MESSAGE else flat[: _MAX_MESSAGE - 3] + "..."


def _remote(text: str) -> str:
    """Text that came from elsewhere (a server, a library): one line, redacted."""
    from workers.redaction import redact

    return one_line(redact(str(text).strip()))


def explain(err: BaseException, args: argparse.Namespace | None = None) -> tuple[int, str]:
    """(exit status, message) for a failure; an unexpected one becomes status 1 with its type and first line."""
    for explainer in (_ours, _codec, _temporal, _vault, _database):
        found = explainer(err, args)
        if found is not None:
            return found
    if isinstance(err, TimeoutError):
        return EXIT_UNAVAILABLE, f"{err}; it may still get there: check again later"
    first = str(err).strip().splitlines()[0] if str(err).strip() else ""
    shown = f"{type(err).__name__}: {_remote(first)}" if first else type(err).__name__
    return EXIT_FAILED, f"unexpected error ({shown}); rerun with {DEBUG_ENV}=1 for the traceback and report it"


def _ours(err: BaseException, args: argparse.Namespace | None) -> tuple[int, str] | None:
    if isinstance(err, CommandFailed):
        return err.status, str(err)
    if isinstance(err, SpecError):
        return EXIT_USAGE, str(err)
    if "store.schema" in sys.modules:
        from store.schema import SchemaOutOfDate

        if isinstance(err, SchemaOutOfDate):
            # A configuration problem the operator fixes with one command, which the message names.
            return EXIT_USAGE, str(err)
    if "workers.search_attributes" in sys.modules:
        from workers.search_attributes import SearchAttributesMissing

        if isinstance(err, SearchAttributesMissing):
            return EXIT_USAGE, str(err)  # names the commands an operator runs
    if "clients.client" not in sys.modules:
        return None
    from clients.client import (
        AgentEnded,
        AgentNotFound,
        ApprovalClosed,
        ApprovalNotFound,
        LobstackClientError,
        TemporalUnreachable,
    )

    if isinstance(err, TemporalUnreachable):
        return EXIT_UNAVAILABLE, str(err)
    if isinstance(err, AgentEnded):
        return EXIT_FAILED, f"{err}: see `lobstack agent status {err.agent_id}`"
    if isinstance(err, AgentNotFound):
        return EXIT_FAILED, f"{err}: check the id with `lobstack agent list`"
    if isinstance(err, ApprovalClosed):
        return EXIT_FAILED, f"{err}; see `lobstack approvals list --all`"
    if isinstance(err, ApprovalNotFound):
        return EXIT_FAILED, f"{err}: check the id with `lobstack approvals list`"
    if isinstance(err, LobstackClientError):
        return EXIT_FAILED, _remote(str(err))
    return None


_ADD_KEYS = (
    "set LOBSTACK_CODEC_KEYS or LOBSTACK_CODEC_KEYS_FILE to the workers' keys (the request may have been carried out)"
)


def _codec(err: BaseException, args: argparse.Namespace | None) -> tuple[int, str] | None:
    if isinstance(err, KeyError) and str(err.args[0] if err.args else "").startswith("Unknown payload encoding"):
        # The SDK's default converter meeting an encrypted payload: this CLI has no keys at all.
        encoding = str(err.args[0]).removeprefix("Unknown payload encoding").strip()
        return EXIT_FAILED, f"cannot read Temporal's answer: it is {encoding} and this CLI has no key; {_ADD_KEYS}"
    if "connection.codec" not in sys.modules:
        return None
    from connection.codec import CodecConfigError, CodecError

    if isinstance(err, CodecConfigError):
        return EXIT_USAGE, str(err)
    if isinstance(err, CodecError):
        return EXIT_FAILED, f"cannot read Temporal's answer: {err}; {_ADD_KEYS}"
    return None


_GENERIC_FAILURES = {
    "Workflow execution failed",
    "Activity task failed",
    "Child Workflow execution failed",
    "Workflow update failed",
}


def failure_text(err: BaseException) -> str:
    """The messages of a Temporal failure chain, outermost first, without the SDK's generic wrappers.

    Only `message` is read: a failure also carries the worker's stack trace (`failure.stack_trace`), which names files
    on the worker and is never shown.
    """
    from temporalio.exceptions import FailureError

    parts: list[str] = []
    current: BaseException | None = err
    seen: set[int] = set()
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        text = current.message if isinstance(current, FailureError) else str(current)
        if text and text not in _GENERIC_FAILURES and text not in parts:
            parts.append(text)
        current = current.__cause__
    return _remote(": ".join(parts) or type(err).__name__)


def _temporal(err: BaseException, args: argparse.Namespace | None) -> tuple[int, str] | None:
    if "temporalio" not in sys.modules:
        return None
    from temporalio.client import (
        RPCTimeoutOrCancelledError,
        WorkflowFailureError,
        WorkflowQueryFailedError,
        WorkflowQueryRejectedError,
    )
    from temporalio.service import RPCError, RPCStatusCode

    address, namespace = temporal_target(args) if args is not None else ("Temporal", "")
    if isinstance(err, WorkflowFailureError):
        return EXIT_FAILED, f"the workflow failed: {failure_text(err)}"
    if isinstance(err, WorkflowQueryFailedError | WorkflowQueryRejectedError):
        return EXIT_FAILED, f"the worker could not answer: {_remote(str(err))}"
    if isinstance(err, RPCTimeoutOrCancelledError):
        return EXIT_UNAVAILABLE, f"Temporal at {address} did not answer in time; check with `lobstack agent list`"
    if not isinstance(err, RPCError):
        return None
    said = _remote(err.message)
    if err.status == RPCStatusCode.FAILED_PRECONDITION and "poller" in err.message:
        queue = task_queue(args) if args is not None else "the task queue"
        return EXIT_UNAVAILABLE, (
            f"no worker is serving task queue {queue!r} (Temporal: {said}); start `lobstack worker` for it, or pass "
            "the deployment's --task-queue, then retry"
        )
    if err.status in (RPCStatusCode.DEADLINE_EXCEEDED, RPCStatusCode.CANCELLED):
        # What a query gets when no worker picks it up within the server's limit.
        queue = task_queue(args) if args is not None else "the task queue"
        return EXIT_UNAVAILABLE, (
            f"Temporal at {address} did not answer in time ({said}); is a worker serving task queue {queue!r}? "
            "Check, then retry"
        )
    if err.status in (RPCStatusCode.UNAVAILABLE, RPCStatusCode.RESOURCE_EXHAUSTED):
        return EXIT_UNAVAILABLE, f"Temporal at {address} is unavailable ({said}); retry"
    if err.status == RPCStatusCode.NOT_FOUND and said.lower().startswith("namespace "):
        return EXIT_FAILED, f"Temporal at {address}: {said} Check --namespace or TEMPORAL_NAMESPACE ({namespace!r})"
    if err.status in (RPCStatusCode.PERMISSION_DENIED, RPCStatusCode.UNAUTHENTICATED):
        return EXIT_FAILED, f"Temporal at {address} refused this client ({said}); check its credentials"
    return EXIT_FAILED, f"Temporal at {address} refused the request: {said}"


def _vault(err: BaseException, args: argparse.Namespace | None) -> tuple[int, str] | None:
    if "activities.errors" in sys.modules:
        from activities.errors import SecretsRejected, SecretsUnavailable

        if isinstance(err, SecretsRejected):
            return EXIT_FAILED, f"Vault refused: {_remote(str(err))}; check VAULT_TOKEN's policy"
        if isinstance(err, SecretsUnavailable):
            return EXIT_UNAVAILABLE, f"Vault is unavailable: {_remote(str(err))}; check VAULT_ADDR, then retry"
    if "requests" in sys.modules:
        import requests

        if isinstance(err, requests.exceptions.ConnectionError | requests.exceptions.Timeout):
            # hvac outside our translated calls (unwrapping LOBSTACK_CODEC_WRAPPED_KEYS).
            return EXIT_UNAVAILABLE, f"cannot reach Vault ({type(err).__name__}); check VAULT_ADDR, then retry"
    return None


def _database(err: BaseException, args: argparse.Namespace | None) -> tuple[int, str] | None:
    if "sqlalchemy" not in sys.modules:
        return None
    from sqlalchemy import exc

    if isinstance(err, exc.ArgumentError):
        # The text would quote the URL, password included: say what is wrong instead.
        return EXIT_USAGE, (
            "database URL: not a usable SQLAlchemy URL (e.g. sqlite:///path/lobstack.db or "
            "postgresql+psycopg://user@host:5432/db); check --database-url or DATABASE_URL"
        )
    if isinstance(err, exc.OperationalError | exc.InterfaceError | exc.TimeoutError):
        orig = getattr(err, "orig", None) or err
        first = str(orig).strip().splitlines()[0] if str(orig).strip() else type(orig).__name__
        return EXIT_UNAVAILABLE, (
            f"cannot use the registry database ({_remote(first)}); check DATABASE_URL (or --database-url), then retry"
        )
    if isinstance(err, exc.DBAPIError):
        orig = getattr(err, "orig", None) or err
        first = str(orig).strip().splitlines()[0] if str(orig).strip() else type(orig).__name__
        return EXIT_FAILED, f"the registry database refused: {_remote(first)}"
    return None
