"""The `lobstack` CLI under hostile arguments: exit 2, a message naming the field, no traceback, nothing started.

The CLI points at a closed port: had a bad value got through validation, the command would have failed differently (a
connection error, exit 1), so exit 2 with the field's name proves the refusal came first. Subprocesses are slow, so
few examples; the validators themselves are searched thoroughly in test_spec_props.
"""

from __future__ import annotations

import subprocess
import sys

from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from devstack import free_port
from tests.hostile.strategies import BREAKERS
from workflows.spec import AgentSpec, SpecError, validate_spec

# What argv can carry: no NUL (the OS refuses it) and no lone surrogates (not encodable).
_ARGV_TEXT = st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\x00"), min_size=1, max_size=70)
_ARGV_BREAKERS = [b for b in BREAKERS if "\x00" not in b]
argv_text = st.one_of(
    _ARGV_TEXT,
    st.lists(st.one_of(st.sampled_from(_ARGV_BREAKERS), st.text("abc-", max_size=5)), min_size=1, max_size=5).map(
        "".join
    ),
    st.integers(41, 400).map(lambda n: "a" * n),
)

FLAGS = {"--name": "name", "--account": "account_id", "--region": "region", "--provider": "provider"}
FLAGS |= {"--size": "size", "--skill": "skills", "--agent-id": "agent_id"}


def _spec(flag: str, value: str) -> AgentSpec:
    spec = AgentSpec(account_id="acme", name="helper")
    if flag == "--skill":
        spec.skills = [value]
    else:
        setattr(spec, FLAGS[flag], value)
    return spec


def _refused(spec: AgentSpec) -> bool:
    try:
        validate_spec(spec)
    except SpecError:
        return True
    return False


@settings(max_examples=20, deadline=None)
@given(flag=st.sampled_from(sorted(FLAGS)), value=argv_text)
# argparse reads `--agent-id=--` as []: it must be refused, not taken for "no id given" (found by this test).
@example(flag="--agent-id", value="--")
@example(flag="--name", value="$(reboot)")
@example(flag="--skill", value="a\n- b")
# Given explicitly, an empty or blank id is refused like any other bad one, never taken for "no id given" (issue 11).
@example(flag="--agent-id", value="")
@example(flag="--agent-id", value=" \t")
@example(flag="--account", value=" ")
def test_create_refuses_hostile_values_before_connecting(flag: str, value: str) -> None:
    assume(value in ("--", "") or _refused(_spec(flag, value)))
    base = {"--account": "acme", "--name": "helper"}
    base[flag] = value
    # `--flag=value`: a value that starts with '-' is still the flag's value, not another option.
    argv = [f"{key}={val}" for key, val in base.items()]
    closed = f"127.0.0.1:{free_port()}"
    done = subprocess.run(
        [sys.executable, "-m", "clients.cli", "--address", closed, "agent", "create", *argv],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    field = FLAGS[flag]
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith(f"lobstack: error: {field}: "), done.stderr
    assert "Traceback" not in done.stderr and "cannot reach Temporal" not in done.stderr
    assert done.stdout == ""
    assert len(done.stderr) < 600
