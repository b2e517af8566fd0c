"""The audit guard (store.validation) under hostile transitions: the trail is append-only, so what it accepts stays for
good. Details are accepted only as a few short strings under keys that do not carry secrets; anything else is refused
with a SpecError (a ValueError) naming `details.<key>` (or `details` for the object itself), never another error."""

from __future__ import annotations

import string

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from contracts.spec import SpecError
from store.validation import _LIMITS, DETAIL_VALUE_MAX, validate_transition
from tests.hostile.strategies import hostile_text, not_a_string, with_field
from tests.store.helpers import transition

BASE = transition()
SECRET_WORDS = ("token", "secret", "password", "key")
DETAIL_KEY_MAX = 64
DETAILS_MAX = 32


def _field_of(details: object) -> str | None:
    """validate_transition's verdict on `details`: None (accepted) or the field a refusal names."""
    try:
        validate_transition(with_field(BASE, "details", details))
    except SpecError as err:
        assert str(err).startswith(f"{err.field}: ")
        return err.field
    return None


def _styled(parts: list[str], style: str) -> str:
    if style == "camel":
        return parts[0] + "".join(part.capitalize() for part in parts[1:])
    if style == "upper":
        return "_".join(parts).upper()
    return style.join(parts)


# A secret word as a whole word of the key, in each spelling keys use: snake, kebab, dotted, camelCase, UPPER_SNAKE.
secret_carrier_keys = st.builds(
    lambda before, word, after, style: _styled([*before, word, *after], style),
    st.lists(st.sampled_from(["vault", "api", "db", "client", "wrapped"]), max_size=2),
    st.sampled_from(SECRET_WORDS),
    st.lists(st.sampled_from(["id", "value", "v2", "hash"]), max_size=2),
    st.sampled_from(["_", "-", ".", "camel", "upper"]),
)


def _hashable(value: object) -> bool:
    return not isinstance(value, list | dict)


def _harmless(key: str) -> bool:
    return not any(word in key.lower() for word in SECRET_WORDS) and "\x00" not in key


vault_tokens = st.builds(
    lambda prefix, body: prefix + body,
    st.sampled_from(["hvs.", "hvb.", "hvr.", "s.", "b.", "r."]),
    st.text(alphabet=string.ascii_letters + string.digits + "_-", min_size=20, max_size=96),
)


@given(key=secret_carrier_keys, value=st.one_of(hostile_text(max_size=40), not_a_string()))
def test_secret_carrier_keys_are_refused_naming_the_key(key: str, value: object) -> None:
    assert _field_of({"vm_id": "v-1", key: value}) == f"details.{key}"


@given(
    st.dictionaries(
        hostile_text(max_size=70).filter(_harmless),
        st.text(max_size=DETAIL_VALUE_MAX).filter(lambda v: "\x00" not in v),
        max_size=DETAILS_MAX,
    )
)
def test_short_strings_under_harmless_keys_are_accepted(details: dict[str, str]) -> None:
    assume(all(0 < len(k) <= DETAIL_KEY_MAX for k in details))
    assume(not any(v.lstrip().startswith(("hvs.", "hvb.", "hvr.", "s.", "b.", "r.")) for v in details.values()))
    assert _field_of(details) is None


@given(
    st.dictionaries(
        st.one_of(hostile_text(max_size=80), secret_carrier_keys, not_a_string().filter(_hashable)),
        st.one_of(hostile_text(), st.text(min_size=DETAIL_VALUE_MAX + 1, max_size=400), vault_tokens, not_a_string()),
        max_size=DETAILS_MAX + 2,
    )
)
def test_any_details_are_accepted_only_as_short_strings_else_refused_naming_them(details: dict[object, object]) -> None:
    field = _field_of(details)
    if field is None:
        assert len(details) <= DETAILS_MAX
        for key, value in details.items():
            assert isinstance(key, str) and 0 < len(key) <= DETAIL_KEY_MAX and isinstance(value, str)
            assert len(value) <= DETAIL_VALUE_MAX and "\x00" not in key + value
        return
    assert field == "details" or field.removeprefix("details.") in details


@given(
    key=hostile_text(max_size=30).filter(lambda k: _harmless(k) and 0 < len(k) <= DETAIL_KEY_MAX),
    before=st.sampled_from(["", " ", "token is ", "Bearer ", "\n", "x="]),
    token=vault_tokens,
    after=st.sampled_from(["", " ", "\n", " (wrapped)", ";"]),
)
def test_a_vault_token_anywhere_in_a_value_is_refused(key: str, before: str, token: str, after: str) -> None:
    value = before + token + after
    assume(len(value) <= DETAIL_VALUE_MAX)
    assert _field_of({key: value}) == f"details.{key}"


STRING_FIELDS = ["event_key", "account_id", "action", "actor", "name", "provider", "region", "size", "vm_id"]
STRING_FIELDS += ["address", "health", "reason"]


@pytest.mark.parametrize("field", STRING_FIELDS)
@given(value=st.one_of(hostile_text(max_size=300), not_a_string()))
def test_string_columns_are_bounded_or_refused_naming_them(field: str, value: object) -> None:
    try:
        validate_transition(with_field(BASE, field, value))
    except SpecError as err:
        assert err.field == field, err
        return
    assert isinstance(value, str) and len(value) <= _LIMITS.get(field, 10**9)
    # PostgreSQL text cannot hold NUL: what SQLite accepts here PostgreSQL must accept too.
    assert "\x00" not in value
