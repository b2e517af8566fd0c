"""The CLI without a stack: bad input is refused before it connects to anything (exit 2, a message naming the field
and what is allowed), and what cannot be reached is one line with exit 3, never a traceback.

Each case points the CLI at closed ports: if validation let a bad value through, the command would fail differently
(a connection error, exit 3), so the exit code and message prove the refusal happened first.
"""

from __future__ import annotations

import ast
import subprocess
from pathlib import Path

import pytest

from connection.codec import CodecKey, encode_keyring_spec
from devstack import free_port
from store import Registry, upgrade_database
from tests.clients.cli_run import Done, assert_failed, assert_ok, run
from tests.maintenance.helpers import registered

CREATE = ["agent", "create", "--account", "acme", "--name", "helper"]
CLIENTS = Path(__file__).resolve().parents[2] / "clients"


def lobstack(*args: str, env: dict[str, str] | None = None, stdin: bytes = b"") -> subprocess.CompletedProcess[str]:
    done = closed_run(*args, env=env, stdin=stdin)
    return subprocess.CompletedProcess(list(args), done.code, done.out, done.err)


def closed_run(*args: str, env: dict[str, str] | None = None, stdin: bytes = b"") -> Done:
    """`lobstack --address <a closed port> ...`, with Vault and the database at closed ports too unless `env` says."""
    closed = {
        "VAULT_ADDR": f"http://127.0.0.1:{free_port()}",
        "VAULT_TOKEN": "not-a-real-token",
        "DATABASE_URL": f"postgresql+psycopg://lobstack@127.0.0.1:{free_port()}/lobstack",
    }
    return run("--address", f"127.0.0.1:{free_port()}", *args, env={**closed, **(env or {})}, stdin=stdin)


@pytest.mark.parametrize(
    ("extra", "field", "allowed"),
    [
        (["--region", "mars"], "region", "us-east, us-west, eu-central, eu-north, ap-southeast"),
        (["--provider", "aws"], "provider", "local, hetzner, digitalocean, vultr, auto"),
        (["--provider", "hetzner", "--region", "eu-central", "--strict-region"], "region", "refuses substitutes"),
        (["--size", "huge"], "size", "small, medium, large"),
        (["--skill", "Rm -rf"], "skills", "starting with a letter"),
        (["--skill", "a", "--skill", "a"], "skills", "once"),
        (["--agent-id", "UPPER"], "agent_id", "a-z, 0-9 and '-'"),
        (["--agent-id", "x" * 41], "agent_id", "1-40 characters"),
        (["--approval-timeout", "5"], "approval_timeout_s", "from 60 to"),
        (["--health-timeout", "0"], "health_timeout_s", "from 1 to"),
    ],
)
def test_create_refuses_bad_values(extra: list[str], field: str, allowed: str) -> None:
    done = lobstack(*CREATE, *extra)
    assert done.returncode == 2, done.stderr
    assert f"{field}:" in done.stderr and allowed in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("", "is required"),
        ("-leading-dash", "is not allowed"),
        ("has space", "is not allowed"),
        ("Ünïcode", "is not allowed"),
        ("x" * 64, "1-63 characters"),
        ("bad;name$(reboot)", "is not allowed"),
    ],
)
def test_create_refuses_bad_names(name: str, message: str) -> None:
    done = lobstack("agent", "create", "--account", "acme", f"--name={name}")
    assert done.returncode == 2
    assert "name:" in done.stderr and message in done.stderr


def test_commands_on_an_agent_check_its_id_first() -> None:
    for args in (
        ["agent", "status", "../etc"],
        ["agent", "destroy", "A B"],
        ["agent", "approve", "x_y", "--approver", "a"],
    ):
        done = lobstack(*args)
        assert done.returncode == 2 and "agent_id:" in done.stderr, args


def test_an_empty_approver_is_refused() -> None:
    done = lobstack("agent", "approve", "agent-1", "--approver", " ")
    assert done.returncode == 2 and "approver: is required" in done.stderr


def test_an_unreachable_temporal_is_a_clear_error_not_a_traceback() -> None:
    done = lobstack(*CREATE)
    assert done.returncode == 3
    assert "cannot reach Temporal" in done.stderr and "Traceback" not in done.stderr


# Every command that talks to Temporal, with valid arguments.
TEMPORAL_COMMANDS = [
    CREATE,
    ["agent", "status", "helper-1"],
    ["agent", "list"],
    ["agent", "approve", "helper-1", "--approver", "alice"],
    ["agent", "reject", "helper-1", "--approver", "alice"],
    ["agent", "skills", "helper-1", "--skill", "web.search"],
    ["agent", "destroy", "helper-1"],
    ["approvals", "list"],
    ["approvals", "approve", "approval-helper-1-r1", "--approver", "alice"],
    ["approvals", "reject", "approval-helper-1-r1", "--approver", "alice"],
    ["schedules", "install"],
    ["keys", "rotate"],
    ["sweep"],
    ["sweep", "--dry-run"],
]
_IDS = [" ".join(c[:2]) for c in TEMPORAL_COMMANDS]


@pytest.mark.parametrize("command", TEMPORAL_COMMANDS, ids=_IDS)
def test_every_command_says_temporal_is_unreachable_in_one_line_with_status_3(command: list[str]) -> None:
    done = closed_run(*command)
    assert_failed(done, 3, "cannot reach Temporal at 127.0.0.1:", "is `lobstack dev` or a cluster running?")


@pytest.mark.parametrize("command", TEMPORAL_COMMANDS, ids=_IDS)
def test_a_malformed_payload_key_is_refused_before_connecting(command: list[str]) -> None:
    done = closed_run(*command, env={"LOBSTACK_CODEC_KEYS": "no-colon-here"})
    assert_failed(done, 2, "LOBSTACK_CODEC_KEYS entry 1: expected <key id>:<base64 key>")


@pytest.mark.parametrize("command", [CREATE, ["agent", "status", "helper-1"], ["sweep"], ["keys", "rotate"]])
def test_a_missing_key_file_or_two_key_sources_are_refused_naming_the_variable(
    command: list[str], tmp_path: Path
) -> None:
    missing = tmp_path / "no-such-keys"
    done = closed_run(*command, env={"LOBSTACK_CODEC_KEYS_FILE": str(missing)})
    assert_failed(done, 2, f"LOBSTACK_CODEC_KEYS_FILE: cannot read {missing}: No such file or directory")
    spec = encode_keyring_spec([CodecKey.generate("k1")])
    keys_file = tmp_path / "keys"
    keys_file.write_text(spec)
    done = closed_run(*command, env={"LOBSTACK_CODEC_KEYS": spec, "LOBSTACK_CODEC_KEYS_FILE": str(keys_file)})
    assert_failed(done, 2, "set only one of LOBSTACK_CODEC_KEYS, LOBSTACK_CODEC_KEYS_FILE")
    assert spec.split(":", 1)[1] not in done.err, "key material is never echoed"


@pytest.mark.parametrize(
    ("command", "field"),
    [
        ([*CREATE, "--agent-id="], "agent_id"),
        ([*CREATE, "--agent-id=   "], "agent_id"),
        ([*CREATE, "--agent-id", ""], "agent_id"),
        (["agent", "create", "--account=", "--name", "helper"], "account_id"),
        (["agent", "create", "--account= ", "--name", "helper"], "account_id"),
        (["agent", "status", ""], "agent_id"),
        (["agent", "status", " "], "agent_id"),
        (["agent", "approve", "", "--approver", "alice"], "agent_id"),
        (["agent", "reject", " ", "--approver", "alice"], "agent_id"),
        (["agent", "skills", "", "--skill", "web.search"], "agent_id"),
        (["agent", "destroy", ""], "agent_id"),
        (["approvals", "approve", "", "--approver", "alice"], "approval_id"),
        (["approvals", "reject", " ", "--approver", "alice"], "approval_id"),
        (["agent-data", "put", "", "smtp.password", "--account", "acme"], "agent_id"),
        (["agent-data", "put", "helper-1", "smtp.password", "--account="], "account_id"),
        (["agent-data", "put", "helper-1", "smtp.password", "--account", " "], "account_id"),
        (["agent-data", "get", " ", "smtp.password"], "agent_id"),
        (["agent-data", "get", "helper-1", "smtp.password", "--account="], "account_id"),
        (["agent-data", "list", ""], "agent_id"),
        (["audit", "verify", "--account="], "account_id"),
        (["audit", "export", "--account", " "], "account_id"),
    ],
)
def test_an_empty_or_blank_id_or_account_is_refused_before_connecting(command: list[str], field: str) -> None:
    closed_db = f"postgresql+psycopg://lobstack@127.0.0.1:{free_port()}/lobstack"
    if command[0] == "audit":
        command = [*command, "--database-url", closed_db]
    done = closed_run(*command)
    assert_failed(done, 2, f"{field}:")
    assert done.out == ""


def test_usage_errors_are_one_line_with_status_2() -> None:
    assert_failed(closed_run("agent", "create", "--name", "helper"), 2, "required: --account", "--help")
    assert_failed(closed_run("agent", "frobnicate"), 2, "invalid choice: 'frobnicate'")
    assert_failed(closed_run(*CREATE, "--wait", "--wait-timeout", "0"), 2, "wait_timeout_s: 0 is not allowed")
    assert_failed(closed_run("agent", "status", "helper-1", "--timeout", "0"), 2, "timeout_s: 0 is not allowed")


def test_help_documents_the_exit_statuses() -> None:
    done = run("--help")
    assert_ok(done)
    statuses = done.out.split("exit status:", 1)[1]
    for line in ("0    done", "1    failed or refused", "2    bad input or configuration", "3    unavailable"):
        assert line in statuses, done.out
    assert "LOBSTACK_DEBUG=1" in statuses


def test_lobstack_debug_adds_the_traceback_and_keeps_the_status() -> None:
    done = closed_run("agent", "list", env={"LOBSTACK_DEBUG": "1"})
    assert done.code == 3 and "Traceback (most recent call last)" in done.err, done
    assert done.err.rstrip().splitlines()[-1].startswith("lobstack: error: cannot reach Temporal"), done


def test_a_worker_without_vault_settings_is_refused_in_one_line() -> None:
    done = closed_run("worker", env={"VAULT_ADDR": ""})
    assert_failed(done, 2, "VAULT_ADDR: is required")


# --- agent data and audit: Vault and the registry database -------------------------------------------------------


@pytest.fixture
def registry_url(tmp_path: Path) -> str:
    """A SQLite registry holding one running agent `helper-1` of account acme with one stored item."""
    url = f"sqlite:///{tmp_path / 'registry.db'}"
    upgrade_database(url)
    with Registry.from_url(url) as registry:
        registry.record(registered("helper-1"))
        registry.put_agent_data(
            agent_id="helper-1", account_id="acme", name="smtp.password", ciphertext="vault:v1:AAAA", key_version=1
        )
    return url


def test_agent_data_without_vault_settings_is_refused(registry_url: str) -> None:
    done = closed_run("agent-data", "list", "helper-1", env={"VAULT_ADDR": "", "DATABASE_URL": registry_url})
    assert_failed(done, 2, "VAULT_ADDR: is required")
    done = closed_run("agent-data", "list", "helper-1", env={"VAULT_TOKEN": "", "DATABASE_URL": registry_url})
    assert_failed(done, 2, "VAULT_TOKEN: is required")


def test_agent_data_with_vault_unreachable_is_status_3(registry_url: str) -> None:
    env = {"DATABASE_URL": registry_url}
    put = closed_run("agent-data", "put", "helper-1", "api.key", "--account", "acme", env=env, stdin=b"value")
    assert_failed(put, 3, "Vault is unavailable: vault read transit/keys/agent-helper-1: connection failed")
    get = closed_run("agent-data", "get", "helper-1", "smtp.password", env=env)
    assert_failed(get, 3, "Vault is unavailable", "check VAULT_ADDR")
    assert get.out == ""
    assert_ok(listed := closed_run("agent-data", "list", "helper-1", env=env))
    assert listed.out == "smtp.password\n"


@pytest.mark.parametrize(
    "command",
    [
        ["agent-data", "put", "helper-1", "api.key", "--account", "acme"],
        ["agent-data", "get", "helper-1", "api.key"],
        ["agent-data", "list", "helper-1"],
    ],
)
def test_agent_data_with_the_database_unreachable_is_status_3(command: list[str]) -> None:
    assert_failed(closed_run(*command, stdin=b"v"), 3, "cannot use the registry database", "check DATABASE_URL")


def test_agent_data_bad_input_is_status_2(registry_url: str, tmp_path: Path) -> None:
    env = {"DATABASE_URL": registry_url}
    missing = tmp_path / "nope"
    put = ["agent-data", "put", "helper-1", "api.key", "--account", "acme"]
    assert_failed(closed_run(*put, "--file", str(missing), env=env), 2, f"file: cannot read {missing}")
    assert_failed(closed_run(*put, env=env, stdin=b"x" * (64 * 1024 + 1)), 2, "value: is 65537 bytes")
    assert_failed(closed_run(*put, env={"DATABASE_URL": "not a url"}), 2, "database URL: not a usable")
    assert_failed(closed_run("agent-data", "get", "helper-1", "Bad Name", env=env), 2, "name:")


def test_agent_data_of_an_unknown_agent_or_item_is_status_1(registry_url: str) -> None:
    env = {"DATABASE_URL": registry_url}
    put = closed_run("agent-data", "put", "helper-2", "api.key", "--account", "acme", env=env, stdin=b"v")
    assert_failed(put, 1, "agent_id: no agent 'helper-2' under account 'acme'")
    other = closed_run("agent-data", "put", "helper-1", "api.key", "--account", "globex", env=env, stdin=b"v")
    assert_failed(other, 1, "no agent 'helper-1' under account 'globex'")
    get = closed_run("agent-data", "get", "helper-1", "api.key", env=env)
    assert_failed(get, 1, "agent 'helper-1' has no data named 'api.key'", "lobstack agent-data list helper-1")


def test_audit_failure_paths(registry_url: str, tmp_path: Path) -> None:
    closed_db = f"postgresql+psycopg://lobstack@127.0.0.1:{free_port()}/lobstack"
    for command in ("verify", "export"):
        done = closed_run("audit", command, "--database-url", closed_db)
        assert_failed(done, 3, "cannot use the registry database", "check DATABASE_URL (or --database-url)")
        done = closed_run("audit", command, "--database-url", "postgresql://:secret-pw@/x?bad=%")
        assert "secret-pw" not in done.err
        done = closed_run("audit", command, "--database-url", "nonsense://x")
        assert_failed(done, 2, "DATABASE_URL: scheme 'nonsense' is not supported", "check --database-url")
        done = closed_run("audit", command, "--database-url", "not a url")
        assert_failed(done, 2, "database URL: not a usable SQLAlchemy URL")
    out = tmp_path / "no-such-dir" / "audit.jsonl"
    done = closed_run("audit", "export", "--database-url", registry_url, "--output", str(out))
    assert_failed(done, 2, f"output: cannot write {out}: No such file or directory")
    assert_ok(closed_run("audit", "verify", "--database-url", registry_url))


# --- one way to build a client -----------------------------------------------------------------------------------


def _connect_calls(path: Path) -> list[str]:
    calls = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "connect":
            target = node.func.value
            calls.append(f"{path.name}:{ast.unparse(target)}.connect")
    return calls


def test_every_command_builds_its_client_in_one_function() -> None:
    """`clients.cli_common.connect` is the only caller of LobstackClient.connect in the CLI, and nothing in clients/
    connects to Temporal another way (a bare Client.connect lost the payload codec once: issue 11, item 4)."""
    calls = sorted(call for path in CLIENTS.glob("*.py") for call in _connect_calls(path))
    assert calls == ["cli_common.py:LobstackClient.connect", "client.py:Client.connect"], calls
    source = (CLIENTS / "cli_common.py").read_text()
    assert "data_converter_from_env()" in source and "DataConverter(" not in source
