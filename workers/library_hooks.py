"""The private hooks of our dependencies that the worker relies on, checked once before it starts.

Three libraries are used through attributes they do not document, each pinned to its minor series in pyproject.toml
while that lasts:
- temporalio: `Worker._set_default_workflow_logic_flag` with `_WorkflowLogicFlag.PROCESS_WORKFLOW_ACTIVATION_JOBS_AS_
  SINGLE_BATCH` (workers/worker.py, through `apply_activation_jobs_as_one_batch` below);
- hcloud: `Client._client._retry_max_retries` and `._session` (activities/cloud/hetzner.py);
- python-digitalocean: `BaseAPI.__perform_request` and `BaseAPI.get_timeout` (activities/cloud/digitalocean.py).
A release that drops one must stop the worker at start with one clear line, not fail workflow tasks or creates later.
"""

from __future__ import annotations

import inspect
import re
from importlib.metadata import PackageNotFoundError, requires, version
from typing import Any

__all__ = ["LibraryHooksMissing", "apply_activation_jobs_as_one_batch", "check", "missing"]

_PROJECT = "lobstack-provisioner"
_BATCH_FLAG = "PROCESS_WORKFLOW_ACTIVATION_JOBS_AS_SINGLE_BATCH"


class LibraryHooksMissing(RuntimeError):
    """A dependency no longer has a private hook the worker uses: a release outside the pinned series."""


def _temporalio() -> list[str]:
    from temporalio.worker import Worker

    gone = []
    if not callable(getattr(Worker, "_set_default_workflow_logic_flag", None)):
        gone.append("Worker._set_default_workflow_logic_flag")
    try:
        from temporalio.worker._workflow_instance import _WorkflowLogicFlag
    except ImportError:
        gone.append("worker._workflow_instance._WorkflowLogicFlag")
    else:
        if not hasattr(_WorkflowLogicFlag, _BATCH_FLAG):
            gone.append(f"_WorkflowLogicFlag.{_BATCH_FLAG}")
    return gone


def _hcloud() -> list[str]:
    import requests
    from hcloud import Client

    # Builds a session and sends nothing; the token is a placeholder, not a credential.
    base = getattr(Client(token="hook-check"), "_client", None)  # noqa: S106
    gone = []
    if base is None or not hasattr(base, "_retry_max_retries"):
        gone.append("Client._client._retry_max_retries")
    if not isinstance(getattr(base, "_session", None), requests.Session):
        gone.append("Client._client._session")
    return gone


def _digitalocean() -> list[str]:
    from digitalocean.baseapi import BaseAPI

    gone = []
    perform = getattr(BaseAPI, "_BaseAPI__perform_request", None)
    if perform is None or list(inspect.signature(perform).parameters)[:4] != ["self", "url", "type", "params"]:
        gone.append("BaseAPI.__perform_request(url, type, params)")
    if not callable(getattr(BaseAPI, "get_timeout", None)):
        gone.append("BaseAPI.get_timeout")
    return gone


_CHECKS = {"temporalio": _temporalio, "hcloud": _hcloud, "python-digitalocean": _digitalocean}


def _pinned(package: str) -> str:
    """The specifier this project's installed metadata pins `package` to, e.g. `>=1.35,<1.36`."""
    try:
        raws = requires(_PROJECT) or []
    except PackageNotFoundError:
        return ""
    for raw in raws:
        # `name[extras] specifier ; marker`, parsed by hand: `packaging` is not a runtime dependency.
        found = re.fullmatch(r"\s*([A-Za-z0-9._-]+)\s*(?:\[[^]]*\])?\s*\(?([^;()]*)\)?\s*", raw)
        if found and found.group(1).lower() == package:
            return found.group(2).replace(" ", "")
    return ""


def missing() -> dict[str, list[str]]:
    """Each library whose hooks are gone, with what is gone; empty when all are there."""
    found = {}
    for package, check_one in _CHECKS.items():
        try:
            gone = check_one()
        except ImportError as exc:
            gone = [f"an import ({exc.name or exc})"]
        if gone:
            found[package] = gone
    return found


def check() -> None:
    """Raise `LibraryHooksMissing`, one line naming the release, what is gone and the supported series."""
    found = missing()
    if not found:
        return
    parts = []
    for package, gone in found.items():
        try:
            installed = version(package)
        except PackageNotFoundError:
            installed = "(not installed)"
        pin = _pinned(package)
        supported = f"; this release supports {package}{pin}" if pin else ""
        parts.append(f"{package} {installed} lacks {', '.join(gone)}{supported}")
    raise LibraryHooksMissing(
        "the worker cannot start: " + "; ".join(parts) + " (reinstall with deploy/docker/requirements.lock)"
    )


def apply_activation_jobs_as_one_batch(worker: Any) -> None:
    """Apply every job of an activation before any workflow code runs (Temporal's coming default), on `worker`."""
    from temporalio.worker._workflow_instance import _WorkflowLogicFlag

    flag = getattr(_WorkflowLogicFlag, _BATCH_FLAG)
    worker._set_default_workflow_logic_flag(flag, enabled=True)
