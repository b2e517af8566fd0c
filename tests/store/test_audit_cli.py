"""`lobstack audit verify` and `lobstack audit export`, run through their parser against a real registry."""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from clients.audit_cli import add_audit_commands
from store import Registry, upgrade_database, verify_rows
from tests.store.helpers import transition


def audit(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="lobstack")
    add_audit_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["audit", *argv])
    return int(args.func(args))


@pytest.fixture
def registry(database_url: str) -> Iterator[Registry]:
    upgrade_database(database_url)
    with Registry.from_url(database_url) as reg:
        for i in range(3):
            reg.record(transition(event_key=f"a/{i}", reason=f"step {i}"))
            reg.record(transition(event_key=f"b/{i}", agent_id="b1", account_id="globex"))
        yield reg


def _url(registry: Registry) -> str:
    return registry.engine.url.render_as_string(hide_password=False)


def test_verify_ok_prints_counts_and_heads(registry: Registry, capsys: pytest.CaptureFixture[str]) -> None:
    assert audit("verify", "--database-url", _url(registry)) == 0
    out = capsys.readouterr().out
    assert "audit chain ok: 6 events in 2 accounts" in out
    head = registry.events(account_id="acme")[-1].hash
    assert f"acme: 3 events, head {head}" in out


def test_verify_reads_database_url_from_the_environment(
    registry: Registry, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DATABASE_URL", _url(registry))
    assert audit("verify", "--account", "globex") == 0
    assert "3 events in 1 accounts" in capsys.readouterr().out


def test_verify_exits_1_with_the_first_broken_link(registry: Registry, capsys: pytest.CaptureFixture[str]) -> None:
    victim = registry.events(account_id="acme")[1]
    if registry.engine.dialect.name == "postgresql":
        with registry.engine.begin() as conn:
            conn.execute(text("SET LOCAL session_replication_role = replica"))
            conn.execute(text("UPDATE audit_events SET reason = 'edited' WHERE id = :id"), {"id": victim.id})
    else:
        with registry.engine.begin() as conn:
            conn.execute(text("DROP TRIGGER audit_events_no_update"))
            conn.execute(text("UPDATE audit_events SET reason = 'edited' WHERE id = :id"), {"id": victim.id})

    assert audit("verify", "--database-url", _url(registry)) == 1
    err = capsys.readouterr().err
    assert f"account 'acme' seq 2 (event id {victim.id})" in err and f"found {victim.hash}" in err
    assert audit("verify", "--database-url", _url(registry), "--account", "globex") == 0


def test_export_writes_json_lines_that_verify_offline(registry: Registry, tmp_path: Path) -> None:
    out = tmp_path / "audit.jsonl"
    assert audit("export", "--database-url", _url(registry), "--output", str(out)) == 0
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [(r["account_id"], r["seq"]) for r in rows] == [(a, seq) for a in ("acme", "globex") for seq in (1, 2, 3)]
    assert verify_rows(rows).ok


def test_export_one_account_to_stdout(registry: Registry, capsys: pytest.CaptureFixture[str]) -> None:
    assert audit("export", "--database-url", _url(registry), "--account", "globex") == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert {r["account_id"] for r in rows} == {"globex"} and len(rows) == 3


def test_a_bad_account_is_refused_by_the_parser(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        audit("verify", "--account", "*")
    assert caught.value.code == 2
    assert "account_id" in capsys.readouterr().err
