"""Messages as they arrive: checked against their dataclass before any workflow code acts on them.

Anyone holding a Temporal client, the CLI or the Web UI can send a workflow any number of payloads of any JSON (or
bytes the converter cannot read at all) as a start input, signal, update or query. Typed handler parameters would
let the SDK convert them: a wrong count raises `TypeError` inside the workflow (a workflow task that fails forever), a
wrong type drops the signal with an ERROR log quoting the body. So every handler and every `run` of this product
takes `*args: Any` (the SDK then decodes plain JSON without a type) and calls `one_message`, which returns the
dataclass or raises `MessageRefused` naming the field and what is allowed, never quoting a value.

Hand-written rather than a library (pydantic, dacite): it runs inside the workflow sandbox and belongs to the
standard-library-only contract layer, and it needs JSON-shaped rules (a bool is not a number, a time has an offset).
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from collections.abc import Callable, Sequence
from datetime import datetime
from enum import Enum
from typing import Any, Literal, TypeVar, Union

T = TypeVar("T")

__all__ = ["MessageRefused", "Undecodable", "decode", "one_message"]

# Field names quoted in a refusal are the sender's keys: shown clipped, so a refusal stays one short line.
_KEY_SHOWN = 40


@dataclasses.dataclass(frozen=True)
class Undecodable:
    """A payload the data converter could not read (unknown encoding, broken JSON, or a ciphertext no key opens).

    Produced by the workers' payload converter instead of an exception, so that a handler can refuse it like any
    other bad message rather than the SDK dropping it or failing the workflow task.
    """

    encoding: str
    reason: str = ""


class MessageRefused(ValueError):
    """A message that does not fit its dataclass. `field` is a dotted path (`spec.account_id`), or `body`."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def one_message(args: Sequence[object], cls: type[T], *, example: str = "") -> T:
    """The single body of a message, decoded into `cls`.

    No payload, or JSON null, is the empty body (`cls()`) when every field has a default, so an empty signal from the
    UI is refused by the handler's own rules (no approver, say) with the handler's wording.
    """
    like = f" like {example}" if example else ""
    if len(args) > 1:
        raise MessageRefused("body", f"send exactly one JSON object{like}; {len(args)} payloads were sent")
    value = args[0] if args else None
    if isinstance(value, Undecodable):
        raise MessageRefused("body", f"could not be read (encoding {value.encoding}); send one JSON object{like}")
    if value is None:
        try:
            return cls()
        except TypeError:
            raise MessageRefused("body", f"is required: one JSON object{like}") from None
    if not isinstance(value, dict):
        raise MessageRefused("body", f"must be a JSON object{like}, not {_kind(value)}")
    message: T = decode(cls, value)  # checked against `cls` all the way down
    return message


def decode(hint: Any, value: object, path: str = "") -> Any:
    """`value` (plain JSON: dict, list, str, int, float, bool, None) as type `hint`, checked all the way down.

    Supports what our messages use: dataclasses, str, int, float, bool, datetime (ISO 8601 with an offset), enums of
    strings, `Literal` strings, `list[X]`, `dict[str, X]`, `X | None` and `Any`. Unknown fields are refused: a person
    who typed `approvr` learns it now, not after nothing happened.
    """
    where = path or "body"
    if hint is Any:
        return value
    origin = typing.get_origin(hint)
    if origin is Union or origin is types.UnionType:
        options = [a for a in typing.get_args(hint) if a is not type(None)]
        if value is None and len(options) < len(typing.get_args(hint)):
            return None
        if len(options) != 1:
            raise TypeError(f"{where}: unsupported union {hint!r}")  # a bug in our messages, not the sender's
        return decode(options[0], value, path)
    if origin is Literal:
        choices = typing.get_args(hint)
        if not isinstance(value, str) or value not in choices:
            raise MessageRefused(where, f"must be one of: {', '.join(choices)}")
        return value
    if origin is list:
        (item,) = typing.get_args(hint)
        if not isinstance(value, list):
            raise MessageRefused(where, f"must be a list, not {_kind(value)}")
        return [decode(item, v, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        key_hint, item = typing.get_args(hint)
        if key_hint is not str:
            raise TypeError(f"{where}: unsupported mapping {hint!r}")
        if not isinstance(value, dict):
            raise MessageRefused(where, f"must be an object, not {_kind(value)}")
        return {k: decode(item, v, f"{where}.{_clip(k)}") for k, v in value.items()}
    if dataclasses.is_dataclass(hint) and isinstance(hint, type):
        return _dataclass(hint, value, path)
    if isinstance(hint, type) and issubclass(hint, Enum):
        allowed = [str(m.value) for m in hint]
        if not isinstance(value, str) or value not in allowed:
            raise MessageRefused(where, f"must be one of: {', '.join(allowed)}")
        return hint(value)
    if hint in _SCALARS:
        fits, rule = _SCALARS[hint]
        if not fits(value):
            raise MessageRefused(where, f"{rule}, not {_kind(value)}")
        if hint is float and isinstance(value, int | float):
            return float(value)  # a JSON 1 is a float field's 1.0
        return value
    if hint is datetime:
        return _time(value, where)
    raise TypeError(f"{where}: unsupported type {hint!r}")  # a bug in our messages, not the sender's


def _dataclass(cls: type[Any], value: object, path: str) -> Any:
    where = path or "body"
    if not isinstance(value, dict):
        raise MessageRefused(where, f"must be a JSON object, not {_kind(value)}")
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = [k for k in value if k not in fields]
    if unknown:
        shown = _clip(unknown[0]) if isinstance(unknown[0], str) else "(a non-string key)"
        raise MessageRefused(where, f"unknown field {shown}; allowed: {', '.join(fields)}")
    hints = _hints(cls)
    kwargs: dict[str, Any] = {}
    for name, f in fields.items():
        if name in value:
            kwargs[name] = decode(hints[name], value[name], f"{path}.{name}" if path else name)
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise MessageRefused(f"{path}.{name}" if path else name, "is required")
    return cls(**kwargs)


# What each JSON scalar must be, and how a refusal says so. A bool is an int in Python, never in JSON.
_SCALARS: dict[object, tuple[Callable[[object], bool], str]] = {
    bool: (lambda v: isinstance(v, bool), "must be true or false"),
    int: (lambda v: isinstance(v, int) and not isinstance(v, bool), "must be a whole number"),
    float: (
        lambda v: isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v),
        "must be a finite number",
    ),
    str: (lambda v: isinstance(v, str), "must be a string"),
}

_HINTS: dict[type, dict[str, Any]] = {}


def _hints(cls: type) -> dict[str, Any]:
    # Resolved once per class: `from __future__ import annotations` leaves them as strings until asked.
    if cls not in _HINTS:
        _HINTS[cls] = typing.get_type_hints(cls)
    return _HINTS[cls]


def _time(value: object, where: str) -> datetime:
    rule = "must be an ISO 8601 time with a UTC offset, like 2026-01-31T12:00:00+00:00"
    if not isinstance(value, str):
        raise MessageRefused(where, f"{rule}, not {_kind(value)}")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise MessageRefused(where, rule) from None
    if parsed.tzinfo is None:
        # A naive time cannot be compared with workflow.now(): that TypeError would fail the workflow task.
        raise MessageRefused(where, rule)
    return parsed


def _kind(value: object) -> str:
    """What JSON calls a value, so a refusal names the sender's mistake without quoting it."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, bytes):
        return "raw bytes"
    return "an unreadable value"


def _clip(key: object) -> str:
    text = repr(key)
    return text if len(text) <= _KEY_SHOWN else text[: _KEY_SHOWN - 3] + "..."
