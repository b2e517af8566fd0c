"""Checking and redacting an agent's approval request before any of it reaches Temporal.

Whatever the gateway puts in a ToolApproval input lands in workflow history, where approvers and operators read it.
So arguments are bounded (count, length, flat) and redacted first: a value under a sensitive-looking key, and any value
that looks like a credential or a long random string, becomes "[redacted]". Redaction errs on the side of hiding: a
UUID or a hash in an argument is hidden too; approvers see the tool, the shape of the call and the readable values.
"""

from __future__ import annotations

import itertools
import math
import re
from collections import Counter
from dataclasses import dataclass, field

# The identifier rules live in one place, shared with the bridge; re-exported for the gateway's callers.
from contracts.identifiers import REQUEST_ID as REQUEST_ID
from contracts.identifiers import REQUEST_ID_RULE, TOOL_RULE, is_request_id, is_tool
from contracts.identifiers import TOOL as TOOL

REDACTED = "[redacted]"
MAX_ARGUMENTS = 32
MAX_VALUE_CHARS = 200
MAX_KEY_CHARS = 64
RISKS = ("low", "medium", "high", "critical")

_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")

_SENSITIVE_KEY = re.compile(
    r"pass(word|wd|phrase)?|secret|token|key|card|cvv|cvc|iban|ssn|auth|credential"
    # "pin" as a word of the key, camelCase included (userPin, pinCode, USER_PIN), but not spinner or opinion.
    r"|(?-i:(?:^|[^A-Za-z]|(?<=[a-z]))(?:pin|Pin|PIN)(?=$|[^a-z]))",
    re.I,
)
# Shapes of well-known credentials: Vault, OpenAI/Stripe, GitHub, Slack, AWS, Google, DigitalOcean, JWTs, PEM blocks,
# bearer headers.
_CREDENTIAL = re.compile(
    r"\b(hv[sbr]\.[A-Za-z0-9_-]{20,}|s\.[A-Za-z0-9]{20,}|sk[-_][A-Za-z0-9_-]{16,}|(rk|pk)_(live|test)_[A-Za-z0-9]{10,}"
    r"|do[opr]_v1_[a-f0-9]{64}|gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,}|xox[abposr]-[A-Za-z0-9-]{10,}|AKIA[0-9A-Z]{16}"
    r"|AIza[0-9A-Za-z_-]{30,}|eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*)"
    r"|-----BEGIN [A-Z ]*PRIVATE KEY-----|\bbearer\s+\S{8,}",
    re.I,
)
# A long run of token characters ('/' and '.' split it, so paths and host names are not one run): a candidate secret.
_RANDOM_RUN = re.compile(r"[A-Za-z0-9+=_-]{20,}")
_HEX = re.compile(r"^[0-9a-fA-F-]+$")
_DIGIT_RUN = re.compile(r"(?:\d[ -]?){12,19}")


class RequestInvalid(ValueError):
    """A field of the request is not acceptable; `field` names it."""

    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(f"{field_name}: {message}")
        self.field = field_name


@dataclass
class ApprovalRequest:
    request_id: str
    tool: str
    arguments: dict[str, str] = field(default_factory=dict)
    risk: str = "high"


def _entropy_bits_per_char(text: str) -> float:
    counts = Counter(text)
    return -sum(n / len(text) * math.log2(n / len(text)) for n in counts.values())


def _luhn(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def looks_secret(value: str) -> bool:
    if _CREDENTIAL.search(value):
        return True
    for match in _DIGIT_RUN.finditer(value):
        digits = re.sub(r"\D", "", match.group())
        if 13 <= len(digits) <= 19 and _luhn(digits):
            return True  # a payment card number
    return any(_looks_random(run) for run in _RANDOM_RUN.findall(value))


def _looks_random(run: str) -> bool:
    """Letters and digits, high entropy, and a shape words rarely have: mixed case, 32+ hex digits or many digits.
    A slug like "quarterly-report-2026-final" stays readable; keys, UUIDs and hashes do not."""
    digits = sum(c.isdigit() for c in run)
    if not any(c.isalpha() for c in run) or _entropy_bits_per_char(run) < 3.0:
        return False
    # Several capitals, not just a capitalised word: "Meeting_notes_2026" is text, "Zx8Qp3Lm7Rt2" is not.
    mixed_case = sum(c.islower() for c in run) >= 3 and sum(c.isupper() for c in run) >= 3
    if not digits:
        # A random base64url key can draw no digit at all (1 in 2,500 of 46 characters). Its letters still read as no
        # words do: the case flips about every other letter and vowels are rare (10 of 52), where CamelCase and
        # acronyms flip once or twice per word and are a third vowels. Measured on 20,000 random keys of 40 to 90
        # characters: 1% pass as text; "XMLHttpRequestFactoryProvider" and the like all stay readable.
        letters = [c for c in run if c.isalpha()]
        vowels = sum(c in "aeiouAEIOU" for c in letters) / len(letters)
        flips = sum(a.isupper() != b.isupper() for a, b in itertools.pairwise(letters)) / (len(letters) - 1)
        return mixed_case and len(letters) >= 20 and flips - vowels >= 0.1
    hex_digest = bool(_HEX.fullmatch(run)) and len(run.replace("-", "")) >= 32
    # One long unbroken stretch of letters and digits is no word: single-case API keys (Vultr's are 36 of A-Z0-9).
    long_mixed = any(
        len(part) >= 24 and any(c.isdigit() for c in part) and any(c.isalpha() for c in part)
        for part in re.split(r"[-_]", run)
    )
    return mixed_case or hex_digest or long_mixed or digits / len(run) >= 0.25


def redact(arguments: dict[str, str]) -> dict[str, str]:
    """Hide sensitive values; decided on the whole value before truncation, so a cut cannot expose part of one."""
    out: dict[str, str] = {}
    for key, value in arguments.items():
        if _SENSITIVE_KEY.search(key) or looks_secret(value):
            out[key] = REDACTED
        else:
            out[key] = value[:MAX_VALUE_CHARS]
    return out


def _stringish(key: str, value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (str, int, float)):
        return str(value)
    raise RequestInvalid("arguments", f"{key!r} must be a string, number, boolean or null (a flat object)")


def parse_request(body: object) -> ApprovalRequest:
    """Validate a POST /v1/approvals body; RequestInvalid names the first bad field. Arguments come back redacted."""
    if not isinstance(body, dict):
        raise RequestInvalid("body", "must be a JSON object")
    request_id = body.get("request_id")
    if not is_request_id(request_id):
        raise RequestInvalid("request_id", f"must be {REQUEST_ID_RULE}")
    tool = body.get("tool")
    if not is_tool(tool):
        raise RequestInvalid("tool", f"must be {TOOL_RULE}")
    raw = body.get("arguments", {})
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise RequestInvalid("arguments", "must be a JSON object")
    if len(raw) > MAX_ARGUMENTS:
        raise RequestInvalid("arguments", f"{len(raw)} given; at most {MAX_ARGUMENTS} are allowed")
    arguments: dict[str, str] = {}
    for key, value in raw.items():
        if not _KEY.fullmatch(key) or len(key) > MAX_KEY_CHARS:
            raise RequestInvalid(
                "arguments", f"keys must be 1-{MAX_KEY_CHARS} characters of A-Z, a-z, 0-9, '_', '.', '-'"
            )
        arguments[key] = _stringish(key, value)
    risk = body.get("risk", "high")
    if risk not in RISKS:
        raise RequestInvalid("risk", f"{str(risk)[:40]!r} is not allowed; choose one of: {', '.join(RISKS)}")
    return ApprovalRequest(request_id=request_id, tool=tool, arguments=redact(arguments), risk=str(risk))
