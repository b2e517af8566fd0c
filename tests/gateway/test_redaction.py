"""What the gateway hides before an approval reaches history, and what it leaves readable for the approver."""

from __future__ import annotations

import pytest

from gateway.approvals import REDACTED, RequestInvalid, parse_request, redact


@pytest.mark.parametrize(
    "key",
    [
        "password",
        "db_passwd",
        "client_secret",
        "accessToken",
        "api_key",
        "cardNumber",
        "CVV",
        "iban",
        "ssn",
        "Authorization",
        "pin",
    ],
)
def test_sensitive_keys_are_hidden_whatever_the_value(key: str) -> None:
    assert redact({key: "x"}) == {key: REDACTED}


@pytest.mark.parametrize(
    "value",
    [
        "hvs.CAESIJx0sW8v1ZkPq9Yw3n7Lr2dE5tUa",
        "sk-proj-7fQ2xLp9RtZ4mN8vB3cW6yH1",
        "ghp_16C7e42F292c6912E7710c838347Ae178B4a",
        "AKIAIOSFODNN7EXAMPLE",
        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
        "Bearer abcdefgh12345678",
        "-----BEGIN RSA PRIVATE KEY----- MIIEow",
        "pay with 4111 1111 1111 1111 today",
        "ref Zx8Qp3Lm7Rt2Vb9Nc4Hw6Jk1Ys5Df0Ga",
        "550e8400-e29b-41d4-a716-446655440000",
        "k3j4h5g6f7d8s9a0q1w2e3r4",
        "dXNlcjpwYXNzd29yZDEyMzQ1Njc4OTAxMjM0NTY3ODkw/Zm9vYmFy",
    ],
)
def test_values_that_look_like_credentials_are_hidden(value: str) -> None:
    assert redact({"note": value}) == {"note": REDACTED}


@pytest.mark.parametrize(
    "value",
    [
        "ceo@example.com",
        "Quarterly numbers for 2026, please review before Friday",
        "https://example.com/reports/q3-summary",
        "order 12345",
        "+49 30 1234567",
        "quarterly-report-2026-final-v2",
        "Meeting_notes_for_the_board_2026",
        "getUserNameFromDatabaseHelper",
        "XMLHttpRequestFactoryProvider",
        "NASA_JPL_Mission_Report_Final",
        "StrengthsWeaknessesThreatsList",
    ],
)
def test_readable_values_stay_readable(value: str) -> None:
    assert redact({"note": value}) == {"note": value}


def test_values_are_truncated_after_the_secret_check() -> None:
    long_text = "word " * 100
    assert redact({"body": long_text}) == {"body": long_text[:200]}
    # A secret beyond the cut is still found: the check sees the whole value.
    assert redact({"body": "a " * 150 + "sk-proj-7fQ2xLp9RtZ4mN8vB3cW6yH1"}) == {"body": REDACTED}


def test_parse_request_flattens_scalars_and_refuses_nesting() -> None:
    parsed = parse_request({"request_id": "r1", "tool": "email.send", "arguments": {"n": 3, "ok": True, "x": None}})
    assert parsed.arguments == {"n": "3", "ok": "true", "x": ""}
    assert parsed.risk == "high"
    with pytest.raises(RequestInvalid) as err:
        parse_request({"request_id": "r1", "tool": "email.send", "arguments": {"a": [1]}})
    assert err.value.field == "arguments"
