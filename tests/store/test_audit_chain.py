"""The audit trail's per-account hash chain, on SQLite and PostgreSQL: append, verify, tamper, export."""

from __future__ import annotations

import itertools
import json
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DatabaseError

from contracts.models import AgentState
from store import Registry, upgrade_database, upgrade_schema, verify_rows
from store.audit import GENESIS_HASH, event_hash
from store.schema import head_revision
from tests.store.helpers import run_together, transition

T0 = datetime(2025, 6, 1, 9, 0, tzinfo=UTC)


@pytest.fixture
def registry(database_url: str) -> Iterator[Registry]:
    upgrade_database(database_url)
    with Registry.from_url(database_url) as reg:
        yield reg


def _fill(registry: Registry, per_account: int = 10) -> None:
    """Interleaved events of two accounts, so each chain skips the other's ids."""
    for i in range(per_account):
        for account, agent in (("acme", "a1"), ("globex", "b1")):
            registry.record(
                transition(
                    event_key=f"{agent}/{i}",
                    agent_id=agent,
                    account_id=account,
                    action="agent.health",
                    reason=f"probe {i}",
                    details={"n": str(i)},
                    at=T0 + timedelta(seconds=i),
                )
            )


def _raw(registry: Registry, sql: str, **params: object) -> None:
    """Tamper as only someone with the database itself can: superuser without triggers, or the SQLite file."""
    if registry.engine.dialect.name == "postgresql":
        with registry.engine.begin() as conn:
            conn.execute(text("SET LOCAL session_replication_role = replica"))  # superuser only: skips triggers
            conn.execute(text(sql), params)
        return
    path = registry.engine.url.database
    assert path is not None
    db = sqlite3.connect(path)
    try:
        with db:
            db.execute("DROP TRIGGER IF EXISTS audit_events_no_update")
            db.execute("DROP TRIGGER IF EXISTS audit_events_no_delete")
            db.execute(sql, params)
    finally:
        db.close()


def test_chains_hold_across_two_accounts(registry: Registry) -> None:
    _fill(registry)
    report = registry.verify_audit()
    assert report.ok and report.broken is None
    assert (report.accounts, report.events) == (2, 20)

    for account in ("acme", "globex"):
        events = registry.events(account_id=account)
        assert [e.seq for e in events] == list(range(1, 11))
        assert events[0].prev_hash == GENESIS_HASH
        assert all(later.prev_hash == earlier.hash for earlier, later in itertools.pairwise(events))
        assert report.heads[account] == (10, events[-1].hash)
        assert registry.verify_audit(account).events == 10
    assert registry.verify_audit("initech").ok and registry.verify_audit("initech").events == 0


def test_a_duplicate_event_key_adds_nothing_to_the_chain(registry: Registry) -> None:
    assert registry.record(transition(event_key="k/1"))
    head = registry.events()[-1]
    assert not registry.record(transition(event_key="k/1", state=AgentState.RUNNING))
    assert registry.record(transition(event_key="k/2", action="vm.created"))
    first, second = registry.events()
    assert first == head
    assert (second.seq, second.prev_hash) == (2, head.hash)
    assert registry.verify_audit().ok


def test_audit_only_events_are_chained_too(registry: Registry) -> None:
    registry.record(transition())
    registry.record(transition(event_key="k/rotated", action="keys.rotated", audit_only=True))
    assert [e.seq for e in registry.events()] == [1, 2]
    assert registry.verify_audit().ok


def test_a_changed_reason_is_reported_at_exactly_that_event(registry: Registry) -> None:
    _fill(registry)
    victim = next(e for e in registry.events(account_id="acme") if e.seq == 5)
    _raw(registry, "UPDATE audit_events SET reason = 'nothing to see' WHERE id = :id", id=victim.id)

    report = registry.verify_audit()
    assert not report.ok and report.broken is not None
    assert (report.broken.account_id, report.broken.seq, report.broken.event_id) == ("acme", 5, victim.id)
    assert "content" in report.broken.problem
    assert report.broken.found == victim.hash
    assert report.broken.expected != victim.hash
    assert report.events == 4  # acme 1-4 held before the break
    assert registry.verify_audit("globex").ok, "the other account's chain is untouched"


def test_a_rewritten_hash_breaks_the_next_link(registry: Registry) -> None:
    _fill(registry, per_account=4)
    victim = next(e for e in registry.events(account_id="globex") if e.seq == 2)
    forged = event_hash({**victim.__dict__, "reason": "forged", "state": victim.state.value}, victim.prev_hash)
    _raw(registry, "UPDATE audit_events SET reason = 'forged', hash = :h WHERE id = :id", h=forged, id=victim.id)

    broken = registry.verify_audit().broken
    assert broken is not None
    assert (broken.account_id, broken.seq) == ("globex", 3)
    assert (broken.expected, broken.found) == (forged, victim.hash)


def test_a_deleted_event_is_reported(registry: Registry) -> None:
    _fill(registry)
    events = registry.events(account_id="acme")
    gone, after = events[6], events[7]
    _raw(registry, "DELETE FROM audit_events WHERE id = :id", id=gone.id)

    broken = registry.verify_audit().broken
    assert broken is not None
    assert (broken.account_id, broken.seq, broken.event_id) == ("acme", 8, after.id)
    assert "seq 7..7 missing" in broken.problem
    assert (broken.expected, broken.found) == (events[5].hash, gone.hash)
    assert "acme" in registry.verify_audit().describe() and "seq 8" in registry.verify_audit().describe()


def test_the_first_event_deleted_is_reported(registry: Registry) -> None:
    _fill(registry, per_account=3)
    first = registry.events(account_id="globex")[0]
    _raw(registry, "DELETE FROM audit_events WHERE id = :id", id=first.id)
    broken = registry.verify_audit().broken
    assert broken is not None and (broken.account_id, broken.seq, broken.expected) == ("globex", 2, GENESIS_HASH)


def test_the_service_cannot_update_or_delete_events(registry: Registry) -> None:
    registry.record(transition())
    # The registry's own engine (on PostgreSQL here a superuser, the tables' owner): the trigger refuses all the same.
    for sql in ("UPDATE audit_events SET reason = 'x'", "DELETE FROM audit_events"):
        with pytest.raises(DatabaseError, match="append-only"), registry.engine.begin() as conn:
            conn.execute(text(sql))
    assert len(registry.events()) == 1 and registry.verify_audit().ok


def test_concurrent_writers_of_one_account_make_one_unbroken_chain(registry: Registry) -> None:
    def write(i: int) -> bool:
        return all(
            registry.record(transition(event_key=f"w{i}/{j}", action="agent.health", reason=f"{i}.{j}"))
            for j in range(5)
        )

    assert run_together(8, write) == [True] * 8
    report = registry.verify_audit()
    assert report.ok and (report.accounts, report.events) == (1, 40)
    assert sorted(e.seq for e in registry.events()) == list(range(1, 41))


def test_concurrent_duplicates_write_one_link(registry: Registry) -> None:
    registry.record(transition(event_key="k/0"))
    results = run_together(8, lambda i: registry.record(transition(event_key="k/same", reason=str(i))))
    assert results.count(True) == 1
    assert [e.seq for e in registry.events()] == [1, 2] and registry.verify_audit().ok


def test_export_round_trip(registry: Registry) -> None:
    _fill(registry, per_account=5)
    registry.record(transition(event_key="u/1", agent_id="a2", reason="naïve café ✓", details={"note": "ünïcode"}))
    lines = [json.dumps(row) for row in registry.export_audit()]
    rows = [json.loads(line) for line in lines]

    assert [(r["account_id"], r["seq"]) for r in rows] == [("acme", i) for i in range(1, 7)] + [
        ("globex", i) for i in range(1, 6)
    ]
    by_id = {e.id: e for e in registry.events()}
    for row in rows:
        event = by_id[row["id"]]
        assert (row["event_key"], row["reason"], row["details"], row["hash"]) == (
            event.event_key,
            event.reason,
            event.details,
            event.hash,
        )
        assert datetime.fromisoformat(row["at"]) == event.at
    offline = verify_rows(rows)
    assert offline.ok and offline.events == 11 and offline.heads == registry.verify_audit().heads

    assert [r["account_id"] for r in registry.export_audit("globex")] == ["globex"] * 5
    rows[3]["actor"] = "mallory"
    broken = verify_rows(rows).broken
    assert broken is not None and (broken.account_id, broken.seq) == ("acme", 4)


def test_an_older_database_is_upgraded_and_its_events_chained(registry: Registry) -> None:
    _fill(registry, per_account=3)
    # Back to the schema before the chain: no seq/prev_hash/hash, no append-only trigger, no account on health, and
    # made before migrations (no alembic_version): `lobstack db upgrade` adopts it.
    with registry.engine.begin() as conn:
        conn.execute(text("DROP TABLE alembic_version"))
        # revisions 0002 to 0004: after migrations began
        for table in ("approval_policies", "webhook_endpoints", "account_limits"):
            conn.execute(text(f"DROP TABLE {table}"))
        conn.execute(text("DROP INDEX uq_audit_events_account_seq"))
        if conn.dialect.name == "postgresql":
            conn.execute(text("DROP TRIGGER audit_events_append_only ON audit_events"))
        else:
            conn.execute(text("DROP TRIGGER audit_events_no_update"))
            conn.execute(text("DROP TRIGGER audit_events_no_delete"))
            conn.execute(text("DROP INDEX ix_agent_health_account_id"))
        for column in ("seq", "prev_hash", "hash"):
            conn.execute(text(f"ALTER TABLE audit_events DROP COLUMN {column}"))
        for column in ("monthly_usd_cents", "monthly_eur_cents"):  # revision 0004
            conn.execute(text(f"ALTER TABLE agents DROP COLUMN {column}"))
        # PostgreSQL: CASCADE drops the RLS policy on it too; the upgrade must put it back.
        cascade = " CASCADE" if conn.dialect.name == "postgresql" else ""
        conn.execute(text(f"ALTER TABLE agent_health DROP COLUMN account_id{cascade}"))

    assert upgrade_schema(registry.engine) == (None, head_revision())
    report = registry.verify_audit()
    assert report.ok and (report.accounts, report.events) == (2, 6)
    registry.record(transition(event_key="after/1"))
    assert registry.events(account_id="acme")[-1].seq == 4 and registry.verify_audit().ok
    with pytest.raises(DatabaseError, match="append-only"), registry.engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_events"))
    if registry.engine.dialect.name == "postgresql":
        with registry.engine.connect() as conn:
            policies = conn.execute(text("SELECT policyname FROM pg_policies WHERE tablename = 'agent_health'"))
            assert set(policies.scalars()) == {"lobstack_account", "lobstack_system"}
