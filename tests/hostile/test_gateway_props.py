"""The gateway's approval request parsing and redaction under arbitrary JSON bodies and generated credentials.

Whatever parse_request returns lands in ToolApproval history, where approvers and operators read it: a body is either
refused with RequestInvalid naming the field, or comes back bounded and with every credential-shaped value hidden.
"""

from __future__ import annotations

import base64
import json
import random
import re
import socket
import string
from collections.abc import Callable, Iterator

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from bridge.tools import Authorizer, GatewayClient, Skills, SkillsState
from contracts.spec import SpecError, validate_agent_id
from gateway.app import approval_id
from gateway.approvals import (
    MAX_ARGUMENTS,
    MAX_KEY_CHARS,
    MAX_VALUE_CHARS,
    REDACTED,
    REQUEST_ID,
    RISKS,
    TOOL,
    RequestInvalid,
    looks_secret,
    parse_request,
    redact,
)
from tests.hostile.strategies import hostile_text

FIELDS = {"body", "request_id", "tool", "arguments", "risk"}
_KEY = r"[A-Za-z_][A-Za-z0-9_.-]*"

json_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False, allow_infinity=False), hostile_text()
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
valid_keys = st.from_regex(r"\A[A-Za-z_][A-Za-z0-9_.-]{0,20}\Z")
arguments = st.one_of(
    st.dictionaries(st.one_of(valid_keys, hostile_text(max_size=70)), json_values, max_size=6),
    st.dictionaries(valid_keys, json_scalars, max_size=MAX_ARGUMENTS + 3),
    json_values,
)
bodies = st.one_of(
    json_values,
    st.fixed_dictionaries(
        {},
        optional={
            "request_id": st.one_of(st.from_regex(r"\A[a-z0-9]{1,40}\Z"), json_values),
            "tool": st.one_of(st.from_regex(r"\A[a-z][a-z0-9_.-]{0,63}\Z"), json_values),
            "arguments": arguments,
            "risk": st.one_of(st.sampled_from(RISKS), json_values),
        },
    ),
)


@given(bodies)
def test_a_body_is_parsed_bounded_or_refused_naming_the_field(body: object) -> None:
    # As the gateway receives it: through JSON.
    body = json.loads(json.dumps(body))
    try:
        parsed = parse_request(body)
    except RequestInvalid as err:
        assert err.field in FIELDS and str(err).startswith(f"{err.field}: ")
        assert len(str(err)) <= 300
        return
    assert REQUEST_ID.fullmatch(parsed.request_id) and TOOL.fullmatch(parsed.tool) and parsed.risk in RISKS
    assert len(parsed.arguments) <= MAX_ARGUMENTS
    for key, value in parsed.arguments.items():
        assert len(key) <= MAX_KEY_CHARS and re.fullmatch(_KEY, key)
        assert isinstance(value, str) and (
            value == REDACTED or (len(value) <= MAX_VALUE_CHARS and not looks_secret(value))
        )


# --- credentials -----------------------------------------------------------------------------------------------------

BASE62 = string.ascii_letters + string.digits
ALPHABETS = {
    "base62": BASE62,
    "base36-upper": string.ascii_uppercase + string.digits,  # Vultr API keys
    "base36-lower": string.ascii_lowercase + string.digits,
    "hex": "0123456789abcdef",
    "base64url": BASE62 + "-_",
}


def _random_run(alphabet: str, low: int, high: int) -> st.SearchStrategy[str]:
    """Really random (seeded by Hypothesis, so reproducible): a secret is defined by being drawn at random."""

    def draw(rng: random.Random) -> str:
        return "".join(rng.choice(alphabet) for _ in range(rng.randint(low, high)))

    return st.randoms(use_true_random=True).map(draw)


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _jwt(claims: dict[str, str], signature: bytes) -> str:
    header = _b64url(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    return f"{header}.{_b64url(json.dumps(claims).encode())}.{_b64url(signature)}"


def _pem(kind: str, body: bytes) -> str:
    b64 = base64.b64encode(body).decode()
    lines = "\n".join(b64[i : i + 64] for i in range(0, len(b64), 64))
    return f"-----BEGIN {kind}PRIVATE KEY-----\n{lines}\n-----END {kind}PRIVATE KEY-----"


credentials = st.one_of(
    _random_run(BASE62, 24, 24).map("s.".__add__),  # legacy Vault service token
    st.tuples(st.sampled_from(["hvs.", "hvb.", "hvr."]), _random_run(ALPHABETS["base64url"], 24, 120)).map("".join),
    # DigitalOcean personal access tokens: the prefix and 64 hex digits, whatever the digits happen to be.
    st.text(alphabet="0123456789abcdef", min_size=64, max_size=64).map("dop_v1_".__add__),
    _random_run(ALPHABETS["hex"], 64, 64).map("dop_v1_".__add__),
    st.builds(
        _pem,
        st.sampled_from(["", "RSA ", "EC ", "OPENSSH ", "ENCRYPTED ", "DSA "]),
        st.binary(min_size=1, max_size=300),
    ),
    st.builds(
        _jwt, st.dictionaries(st.text(max_size=6), st.text(max_size=12), max_size=3), st.binary(min_size=8, max_size=64)
    ),
    *(_random_run(alphabet, 40, 90) for alphabet in ALPHABETS.values()),
)
# Around a credential: anything that does not glue onto it (a separator, then arbitrary text).
SEPARATORS = " \n\t,;:'\"()<>[]{}|"
surroundings = st.one_of(
    st.just(""),
    st.tuples(hostile_text(max_size=40), st.sampled_from(SEPARATORS)).map("".join),
)


@given(key=st.one_of(valid_keys, hostile_text()), before=surroundings, secret=credentials, after=surroundings)
def test_credentials_are_hidden_under_any_key(key: str, before: str, secret: str, after: str) -> None:
    after = after[::-1]  # separator first
    value = before + secret + after
    assert looks_secret(value), secret
    out = redact({key: value, "other": "hello"})
    assert out[key] == REDACTED and out["other"] == "hello"
    assert not any(secret in v or secret[:20] in v for v in out.values())


@given(secret=credentials)
# Degenerate digits are still a token: the shape gives it away, not the entropy.
@example(secret="dop_v1_" + "a" * 64)
@example(secret="dop_v1_" + "ab12" * 16)
@example(secret="dop_v1_" + "1" * 64)
# A random base64url key that drew no digit (found by this test in a helper's run on 2026-12-04).
@example(secret="DPIoWlHsPTcdQLW-EPvsKwthobLEzO__meIjElYyBFZUfy")
def test_credentials_in_a_request_never_reach_the_approval(secret: str) -> None:
    parsed = parse_request({"request_id": "r1", "tool": "email.send", "arguments": {"to": "a@b.c", "body": secret}})
    assert parsed.arguments == {"to": "a@b.c", "body": REDACTED}


@given(st.dictionaries(hostile_text(), st.one_of(hostile_text(), st.text(max_size=1000)), max_size=8))
def test_redaction_never_crashes_and_only_shortens(arguments: dict[str, str]) -> None:
    out = redact(arguments)
    assert set(out) == set(arguments)
    for key, value in out.items():
        assert value == REDACTED or value == arguments[key][:MAX_VALUE_CHARS]


@given(
    st.tuples(
        st.one_of(st.just(""), hostile_text(max_size=10).map(lambda s: s + "_")),
        st.sampled_from(["password", "Secret", "TOKEN", "api_key", "cvv", "iban", "auth", "credential", "pin"]),
        st.sampled_from(["", "_x", "-1", ".v", "Value"]),
    ).map("".join),
    hostile_text(),
)
def test_sensitive_keys_hide_any_value(key: str, value: str) -> None:
    assert redact({key: value}) == {key: REDACTED}


# --- one identifier rule, bridge and gateway ------------------------------------------------------------------------

GATED_TOOL = "email.send"
request_ids = st.one_of(
    st.from_regex(r"\A[a-z0-9]{1,40}\Z"),
    # What the bridge used to accept: '-' anywhere after the first character.
    st.from_regex(r"\A[a-z0-9][a-z0-9-]{0,39}\Z"),
    st.sampled_from(["", "-", "a-", "-a", "x-r1", "a" * 40, "a" * 41, "A1", "a\n", "a b", "a_b", "a.b"]),
    hostile_text(),
    # JSON values that are not a string (null is left out: to the bridge it means "assign one").
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)
tools = st.one_of(
    st.from_regex(r"\A[a-z][a-z0-9_.-]{0,63}\Z"),
    st.sampled_from(["", "Email.send", "email send", "1tool", "a" * 64, "a" * 65, "email.send\n", "e/mail"]),
    hostile_text(),
)
agent_ids = st.from_regex(r"\A[a-z0-9](?:[a-z0-9-]{0,38}[a-z0-9])?\Z")


@pytest.fixture(scope="module")
def bridge() -> Iterator[Authorizer]:
    """The bridge's real Authorizer, every tool enabled and gated, with a gateway that refuses connections.

    The socket is bound and never listens, so the port stays ours and each connection is refused at once: an id the
    bridge accepts gets as far as calling the gateway (503 "gateway unavailable"); one it refuses is a 400.
    """
    with socket.socket() as dead:
        dead.bind(("127.0.0.1", 0))
        gateway = GatewayClient(f"http://127.0.0.1:{dead.getsockname()[1]}", lambda: "not-a-token", timeout_s=2.0)
        skills = SkillsState()
        skills.set(Skills(agent_id="a", skills=frozenset({GATED_TOOL}), approval_required=("*",), version=1))
        yield Authorizer(gateway, skills, wait_s=0.0)
        gateway.close()


def bridge_refusal(bridge: Authorizer, tool: str, body: dict[str, object]) -> str | None:
    """The bridge's 400 reason for this call, or None if it accepted the call's ids."""
    code, answer = bridge.authorize(tool, json.loads(json.dumps(body)))
    if code == 400:
        return str(answer["reason"])
    assert code in (403, 503), (code, answer)  # not enabled, or on its way to the (dead) gateway
    return None


def gateway_refusal(field_name: str, body: dict[str, object]) -> str | None:
    """The gateway's refusal of this field, or None if it accepted it."""
    try:
        parse_request(json.loads(json.dumps(body)))
    except RequestInvalid as err:
        return str(err) if err.field == field_name else None
    return None


@given(request_id=request_ids, tool=tools)
@example(request_id="x-r1", tool=GATED_TOOL)
@example(request_id="", tool=GATED_TOOL)
@example(request_id=0, tool=GATED_TOOL)
def test_the_bridge_and_the_gateway_accept_the_same_ids(bridge: Authorizer, request_id: object, tool: str) -> None:
    # Request ids, for a gated tool: the bridge's check is the one it applies before asking the gateway.
    body = {"request_id": request_id}
    said = bridge_refusal(bridge, GATED_TOOL, body)
    assert said == gateway_refusal("request_id", {**body, "tool": GATED_TOOL})
    if said is not None:
        assert said.startswith("request_id: must be ") and "'-'" in said
    # Tools, with a valid request id.
    said = bridge_refusal(bridge, tool, {"request_id": "r1"})
    assert said == gateway_refusal("tool", {"request_id": "r1", "tool": tool})
    # No request id at all: the bridge assigns one, and it is one the gateway takes.
    code, answer = bridge.authorize(GATED_TOOL, {})
    assigned = {"request_id": answer["request_id"], "tool": GATED_TOOL}
    assert code == 503 and gateway_refusal("request_id", assigned) is None


def _agent_id_ok(value: str) -> bool:
    try:
        validate_agent_id(value)
    except SpecError:
        return False
    return True


@given(agent_id=agent_ids, request_id=request_ids)
@example(agent_id="team-a", request_id="x-r1")
@example(agent_id="a", request_id="b-c")
def test_an_approval_id_names_exactly_one_agent_and_request(
    bridge: Authorizer, agent_id: str, request_id: object
) -> None:
    """approval-<agent_id>-<request_id> splits one way only, for every request id either side accepts."""
    sides: dict[str, Callable[[object], bool]] = {
        "bridge": lambda r: bridge_refusal(bridge, GATED_TOOL, {"request_id": r}) is None,
        "gateway": lambda r: gateway_refusal("request_id", {"request_id": r, "tool": GATED_TOOL}) is None,
    }
    for side, accepts in sides.items():
        if not accepts(request_id):
            continue
        assert isinstance(request_id, str)
        rest = approval_id(agent_id, request_id).removeprefix("approval-")
        readings = [
            (rest[:i], rest[i + 1 :])
            for i, c in enumerate(rest)
            if c == "-" and _agent_id_ok(rest[:i]) and accepts(rest[i + 1 :])
        ]
        assert readings == [(agent_id, request_id)], side
