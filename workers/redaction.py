"""Log hygiene: every line our processes write passes through one redactor, tracebacks included.

Messages are written to name codes, ids and paths only; this is the net under that rule, for the line a library or a
hurried `%r` lets through. It redacts Vault/OpenBao tokens, bearer credentials, provider API tokens and `key=value`
pairs whose key names a secret.
"""

from __future__ import annotations

import logging
import re

REDACTED = "[redacted]"

_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # Vault / OpenBao service, batch and recovery tokens (hvs./hvb./hvr., OpenBao's s./b./r.).
    (re.compile(r"\b(?:hv[sbr]|[sbr])\.[A-Za-z0-9_-]{20,}"), REDACTED),
    # HTTP credentials.
    (re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{8,}"), r"\1 " + REDACTED),
    # DigitalOcean personal access tokens.
    (re.compile(r"\bdo[op]_v1_[a-f0-9]{64}\b"), REDACTED),
    # key=value / "key": "value" where the key names a secret.
    (
        re.compile(
            r"(?i)([\"']?\b[\w-]*(?:token|secret|password|passwd|api[_-]?key|secret[_-]?id|private[_-]?key)"
            r"[\"']?\s*[:=]\s*[\"']?)([^\s\"',;}]{4,})"
        ),
        r"\1" + REDACTED,
    ),
    # Long opaque strings (Hetzner and Vultr tokens, keys): 40+ characters of one run with no spaces.
    (re.compile(r"\b[A-Za-z0-9]{40,}\b"), REDACTED),
)


def redact(text: str) -> str:
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


class RedactingFormatter(logging.Formatter):
    """Formats as usual, then redacts the whole line, exception text and stack included."""

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


def configure_logging(level: int = logging.INFO) -> None:
    """The logging setup of every lobstack process (worker, dev stack, gateway, codec server)."""
    handler = logging.StreamHandler()
    handler.setFormatter(RedactingFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per health probe drowns everything else
