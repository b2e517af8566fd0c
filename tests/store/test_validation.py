from __future__ import annotations

from datetime import datetime

import pytest

from contracts.spec import SpecError
from store import validate_transition
from tests.store.helpers import transition

SECRET = "hunter2-s3cr3t-value"


@pytest.mark.parametrize(
    "key",
    [
        "token",
        "Token",
        "vault_token",
        "apiKey",
        "API_KEY",
        "client-secret",
        "db.password",
        "tokenId",
        "key",
        # "key" as a whole word is refused even where it only names a version: the rule stays simple to reason about.
        "transit_key_version",
    ],
)
def test_secret_carrier_keys_are_refused(key: str) -> None:
    with pytest.raises(SpecError) as caught:
        validate_transition(transition(details={key: SECRET}))
    assert caught.value.field == f"details.{key}"
    assert SECRET not in str(caught.value)


@pytest.mark.parametrize("key", ["secrets", "tokens", "keys", "monkey", "keyboard", "passwords_rotated"])
def test_keys_that_only_contain_the_letters_pass(key: str) -> None:
    validate_transition(transition(details={key: "3"}))


@pytest.mark.parametrize(
    ("details", "field"),
    [
        ({"note": "x" * 257}, "details.note"),
        ({"count": 3}, "details.count"),
        ({"wrapped": "hvs.CAESIJabcdefghijklmnopqrstuvwx"}, "details.wrapped"),
        ({"": "x"}, "details"),
        ({f"k{i}": "x" for i in range(33)}, "details"),
    ],
)
def test_details_must_be_a_few_short_plain_strings(details: dict[str, object], field: str) -> None:
    with pytest.raises(SpecError) as caught:
        validate_transition(transition(details=details))
    assert caught.value.field == field


def test_a_256_character_value_is_fine() -> None:
    validate_transition(transition(details={"note": "x" * 256}))


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"agent_id": "Not An Id"}, "agent_id"),
        ({"account_id": ""}, "account_id"),
        ({"event_key": ""}, "event_key"),
        ({"action": ""}, "action"),
        ({"state": "exploded"}, "state"),
        ({"at": datetime(2025, 1, 1)}, "at"),  # naive on purpose
        ({"vm_id": "v" * 129}, "vm_id"),
        ({"actor": 7}, "actor"),
    ],
)
def test_bad_fields_are_named(overrides: dict[str, object], field: str) -> None:
    with pytest.raises(SpecError) as caught:
        validate_transition(transition(**overrides))
    assert caught.value.field == field
