"""The log redactor: what must never reach a log line, and what must survive it."""

from __future__ import annotations

import logging

import pytest

from workers.redaction import REDACTED, RedactingFormatter, redact

SECRETS = [
    "s.AbCdEfGhIjKlMnOpQrStUvWx",  # OpenBao service token
    "hvs.CAESIJ3pQ7xAbCdEfGhIjKlMnOpQrSt",  # Vault service token
    "dop_v1_" + "a1" * 32,  # DigitalOcean
    "K" * 64,  # Hetzner-style 64-character API token
]


@pytest.mark.parametrize("secret", SECRETS)
def test_tokens_are_redacted_wherever_they_appear(secret: str) -> None:
    for line in (f"token={secret}", f"calling with {secret} now", f'{{"api_key": "{secret}"}}', f"Bearer {secret}"):
        out = redact(line)
        assert secret not in out and REDACTED in out, line


@pytest.mark.parametrize(
    "line",
    [
        "deleted VM local-agent-1 of agent agent-1 on hetzner",
        "workflow agent-t-2d8350ca42c14bca run 01a22678-6ed4-7ba9-8c7a-88dd0f3d93b2",
        "hetzner create server lobstack-x in fsn1: HTTP 412 resource_unavailable",
        "revoked 2 token(s) of agent mailer-1",
    ],
)
def test_ordinary_lines_survive(line: str) -> None:
    assert redact(line) == line


def test_formatter_redacts_tracebacks_too() -> None:
    secret = SECRETS[0]
    try:
        raise RuntimeError(f"vault said no to {secret}")
    except RuntimeError:
        record = logging.LogRecord("t", logging.ERROR, __file__, 1, "failed with secret_id=%s", (secret,), None)
        import sys

        record.exc_info = sys.exc_info()
    text = RedactingFormatter("%(message)s").format(record)
    assert secret not in text and "RuntimeError" in text and text.count(REDACTED) >= 2
