"""Start inputs of the maintenance workflows: decoded and checked in the workflow, refused as a workflow failure.

A schedule, the CLI or anyone holding a Temporal client starts these. The SDK's own conversion would fail the workflow
task (again and again) on a wrongly typed input; here a bad one fails the run at once with a message naming the field.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, TypeVar

from temporalio.exceptions import ApplicationError

from contracts.messages import MessageRefused, one_message

__all__ = ["start_input"]


class _Checked(Protocol):
    def invalid(self) -> str: ...


C = TypeVar("C", bound=_Checked)


def start_input(args: Sequence[object], cls: type[C]) -> C:
    """The run's one input as `cls` (no input or JSON null: the defaults), or a non-retryable `InvalidInput`."""
    try:
        value = one_message(args, cls)
    except MessageRefused as err:
        raise ApplicationError(f"invalid input: {err}", type="InvalidInput", non_retryable=True) from None
    problem = value.invalid()
    if problem:
        raise ApplicationError(f"invalid input: {problem}", type="InvalidInput", non_retryable=True)
    return value
