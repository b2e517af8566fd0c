"""Hostile values, shared by the properties: text that breaks YAML, shells, labels, terminals and length limits."""

from __future__ import annotations

import dataclasses
import string
from typing import TYPE_CHECKING, Any, TypeVar

from hypothesis import strategies as st

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

D = TypeVar("D", bound="DataclassInstance")


def with_field(message: D, field: str, value: object) -> D:
    """`message` with one field set to anything a caller could send, whatever the field's declared type."""
    changes: dict[str, Any] = {field: value}
    return dataclasses.replace(message, **changes)


# Fragments that mean something to a YAML parser, a shell, a label/tag syntax, a terminal or a path.
BREAKERS = (
    ": ",
    "\n- ",
    "\n",
    "\r\n",
    "#",
    "|",
    ">",
    "&anchor",
    "*anchor",
    "!!python/object/apply:os.system ['id']",
    "---",
    "{",
    "}",
    "[",
    "]",
    "$(reboot)",
    "`id`",
    ";",
    "&&",
    "'",
    '"',
    "\\",
    "=",
    ",",
    "/",
    "../",
    "%2F",
    "*",
    "?",
    " ",
    "\t",
    "\x00",
    "\x1b[31m",
    "\u202e",  # right-to-left override
    "\u200b",  # zero-width space
    "\ufeff",
    "İ",  # lower()s to two characters
    "K",  # Kelvin sign: lower()s to ASCII k
    "ǅ",
    "é",
    "日本",
    "🦞",
    "A",
    "Z",
    "-",
    "_",
    ".",
    "@",
    "+",
)

_ALNUM = string.ascii_lowercase + string.digits


def hostile_text(*, max_size: int = 80) -> st.SearchStrategy[str]:
    """Arbitrary unicode, plus ASCII that is nearly valid, plus breakers spliced into plausible values."""
    plausible = st.text(alphabet=_ALNUM + "-", min_size=0, max_size=12)
    spliced = st.lists(st.one_of(plausible, st.sampled_from(BREAKERS)), min_size=1, max_size=6).map("".join)
    return st.one_of(
        st.text(max_size=max_size),
        st.text(alphabet=string.printable, max_size=max_size),
        spliced,
        st.sampled_from(BREAKERS),
        # Nearly valid: the right characters, the wrong length or shape.
        st.text(alphabet=_ALNUM + "-", min_size=0, max_size=120),
        st.integers(min_value=38, max_value=300).map(lambda n: "a" * n),
    )


def huge_text() -> st.SearchStrategy[str]:
    """Megabyte-ish strings: a validator must refuse them quickly and say so briefly."""
    return st.builds(
        lambda unit, n: unit * n, st.sampled_from(["a", "é", "🦞", "a-", "\x00", "\n- "]), st.integers(1000, 200_000)
    )


def not_a_string() -> st.SearchStrategy[object]:
    return st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.floats(allow_nan=True),
        st.lists(st.text(max_size=5), max_size=3),
        st.dictionaries(st.text(max_size=5), st.text(max_size=5), max_size=2),
        st.binary(max_size=10),
    )
