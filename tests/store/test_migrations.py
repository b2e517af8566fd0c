"""Schema migrations carry a live registry forward: every row, every audit link, row-level security.

The fixture database is today's (the baseline revision) or one made before migrations existed (create_schema's,
tests/store/pre_migration_schema.py), filled with raw rows of two accounts: agents, a hash-chained audit trail, agent
data and health. It is upgraded to head with `lobstack db upgrade`'s code, then read with the current registry.

A later migration extends `_fill` with the rows its change must carry (and `_check_carried` with what must hold after),
never replaces it: each release's upgrade test starts from the oldest schema an operator may still have.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import JSON, Connection, Engine, bindparam, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.exc import DatabaseError
from sqlmodel import SQLModel

from contracts.approver_policy import ApproverChange
from contracts.limits import Admission, LimitsChange
from contracts.models import AgentState, Transition
from store import Registry, make_engine, upgrade_schema
from store.account_limits import AccountLimitsStore, OverQuota
from store.approval_policies import ApprovalPolicies
from store.audit import GENESIS_HASH, event_hash
from store.schema import BASELINE_REVISION, head_revision, schema_revision
from store.tenancy import ACCOUNT_TABLES, DbRoles, Scope, scoped_connection
from tests.store.pre_migration_schema import create_pre_migration_schema

T0 = datetime(2026, 11, 2, 9, 30, tzinfo=UTC)
AGENTS = {"acme": ("a-one", "a-two"), "globex": ("g-one",)}
EVENTS_PER_AGENT = 3
# The columns of the baseline tables: what the rows were written with, and what must come back unchanged.
BASELINE_COLUMNS = {
    "agents": "agent_id, account_id, name, provider, region, size, state, vm_id, address, health, created_at, "
    "updated_at, last_error, unhealthy_threshold",
    "audit_events": "id, event_key, at, account_id, agent_id, action, state, actor, reason, details, seq, prev_hash, "
    "hash",
    "agent_data": "id, agent_id, account_id, name, ciphertext, key_version, updated_at",
    "agent_health": "agent_id, account_id, healthy, status, reason, consecutive_failures, address, checked_at",
}


def _fill(conn: Connection) -> dict[str, tuple[int, str]]:
    """Rows of two accounts written as the old code stored them; returns each account's audit head (seq, hash)."""
    heads: dict[str, tuple[int, str]] = {}
    for account, agent_ids in AGENTS.items():
        prev, seq = GENESIS_HASH, 0
        for n, agent_id in enumerate(agent_ids):
            conn.execute(
                text(
                    "INSERT INTO agents (agent_id, account_id, name, provider, region, size, state, vm_id, address, "
                    "health, created_at, updated_at, last_error, unhealthy_threshold) VALUES (:a, :acc, :name, "
                    "'hetzner', 'eu-central', 'small', 'running', :vm, :addr, 'healthy', :t, :t, '', 3)"
                ),
                {"a": agent_id, "acc": account, "name": f"helper-{n}", "vm": f"vm-{agent_id}",
                 "addr": f"10.0.0.{n + 1}", "t": T0},
            )  # fmt: skip
            for step, action in enumerate(("agent.requested", "vm.created", "agent.running")[:EVENTS_PER_AGENT]):
                seq += 1
                event: dict[str, Any] = {
                    "event_key": f"{agent_id}/{step}", "at": T0 + timedelta(seconds=seq), "account_id": account,
                    "agent_id": agent_id, "action": action, "state": "running", "actor": "worker",
                    "reason": "", "details": {"step": str(step)}, "seq": seq,
                }  # fmt: skip
                digest = event_hash(event, prev)
                conn.execute(
                    text(
                        "INSERT INTO audit_events (event_key, at, account_id, agent_id, action, state, actor, reason, "
                        "details, seq, prev_hash, hash) VALUES (:event_key, :at, :account_id, :agent_id, :action, "
                        ":state, :actor, :reason, :details, :seq, :prev_hash, :hash)"
                    ).bindparams(_json("details", conn)),
                    {**event, "prev_hash": prev, "hash": digest},
                )
                prev = digest
            conn.execute(
                text(
                    "INSERT INTO agent_data (agent_id, account_id, name, ciphertext, key_version, updated_at) "
                    "VALUES (:a, :acc, 'smtp.password', :c, 1, :t)"
                ),
                {"a": agent_id, "acc": account, "c": f"vault:v1:{agent_id}", "t": T0},
            )
            conn.execute(
                text(
                    "INSERT INTO agent_health (agent_id, account_id, healthy, status, reason, consecutive_failures, "
                    "address, checked_at) VALUES (:a, :acc, :h, 'healthy', '', 0, :addr, :t)"
                ),
                {"a": agent_id, "acc": account, "h": True, "addr": f"10.0.0.{n + 1}", "t": T0},
            )
        heads[account] = (seq, prev)
    return heads


def _json(name: str, conn: Connection) -> Any:
    return bindparam(name, type_=JSONB() if conn.dialect.name == "postgresql" else JSON())


def _snapshot(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of the baseline columns, as the superuser/file owner sees them (no account filter)."""
    with engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            # The test login is a superuser, which row-level security does not restrict.
            assert conn.execute(text("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")).scalar()
        return {
            table: [tuple(row) for row in conn.execute(text(f"SELECT {columns} FROM {table} ORDER BY 1"))]
            for table, columns in BASELINE_COLUMNS.items()
        }


@pytest.fixture(params=["baseline", "pre-migration"])
def old_database(request: pytest.FixtureRequest, database_url: str) -> Iterator[tuple[Engine, dict[str, Any]]]:
    """A registry at the oldest schema an operator may have, full of rows; with its heads and a snapshot."""
    engine = make_engine(database_url)
    if request.param == "baseline":
        upgrade_schema(engine, revision=BASELINE_REVISION)
    else:
        create_pre_migration_schema(engine, DbRoles.from_env())
    with engine.begin() as conn:
        heads = _fill(conn)
    try:
        yield engine, {"heads": heads, "rows": _snapshot(engine), "kind": request.param}
    finally:
        engine.dispose()


def test_an_upgrade_to_head_keeps_every_row_the_audit_chain_and_row_level_security(
    old_database: tuple[Engine, dict[str, Any]], database_url: str
) -> None:
    engine, before = old_database
    expected_from = None if before["kind"] == "pre-migration" else BASELINE_REVISION
    assert schema_revision(engine) == expected_from

    assert upgrade_schema(engine) == (expected_from, head_revision())
    assert schema_revision(engine) == head_revision()
    assert _snapshot(engine) == before["rows"]

    with Registry.from_url(database_url) as registry:
        report = registry.verify_audit()
        assert report.ok, report.describe()
        assert report.events == sum(len(a) for a in AGENTS.values()) * EVENTS_PER_AGENT
        assert report.heads == before["heads"]
        # The chain goes on from the migrated head.
        registry.record(_transition("a-one", "acme", "after-upgrade/1"))
        assert registry.events(account_id="acme")[-1].seq == before["heads"]["acme"][0] + 1
        assert registry.verify_audit().ok

        # Each account still sees only its own rows, through the registry on both databases.
        assert {a.agent_id for a in registry.for_account("acme").list_agents()} == set(AGENTS["acme"])
        assert {a.agent_id for a in registry.for_account("globex").list_agents()} == set(AGENTS["globex"])
        with pytest.raises(DatabaseError, match="append-only"), engine.begin() as conn:
            conn.execute(text("DELETE FROM audit_events"))
        # Revision 0002: the accounts' approval policies, each account seeing its own.
        policies = ApprovalPolicies(engine=registry.engine, roles=registry.roles)
        for account, name in (("acme", "alice"), ("globex", "gina")):
            policies.change(ApproverChange(account_id=account, action="add", name=name))
        assert policies.get("globex").approvers == ["gina"]
        # Revision 0004: the accounts' quotas and lifetimes; an existing agent counts towards them at once.
        limits = AccountLimitsStore(engine=registry.engine, roles=registry.roles)
        limits.change(LimitsChange(account_id="globex", action="set", max_agents=len(AGENTS["globex"])))
        assert limits.get("globex").max_agents == len(AGENTS["globex"])
        assert limits.usage("globex").agents == len(AGENTS["globex"])
        with pytest.raises(OverQuota, match=f"max_agents of account globex is {len(AGENTS['globex'])}"):
            limits.admit(registry, Admission("g-new", "globex", "n", "local", "eu-central", "small", event_key="k-new"))
        if engine.dialect.name == "postgresql":
            _check_row_level_security(registry)


def _transition(agent_id: str, account_id: str, event_key: str) -> Transition:
    return Transition(
        event_key=event_key, agent_id=agent_id, account_id=account_id, state=AgentState.RUNNING, action="agent.health"
    )


def _check_row_level_security(registry: Registry) -> None:
    """Unfiltered SQL as one account's service role: the database itself keeps the other account out of every table."""
    with scoped_connection(registry.engine, Scope.of("globex"), registry.roles) as conn:
        assert conn.execute(text("SELECT current_user")).scalar() == registry.roles.service
        for table in (*ACCOUNT_TABLES, "approval_policies", "account_limits"):
            assert set(conn.execute(text(f"SELECT account_id FROM {table}")).scalars()) == {"globex"}, table
        assert conn.execute(text("UPDATE agents SET name = 'x' WHERE account_id = 'acme'")).rowcount == 0


def test_the_migrated_schema_matches_the_models(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        upgrade_schema(engine)
        with engine.connect() as conn:
            differences = compare_metadata(MigrationContext.configure(conn), SQLModel.metadata)
        # A model changed without a migration (or the reverse): write the revision (docs in store/migrations).
        assert differences == []
    finally:
        engine.dispose()


def test_a_worker_refuses_a_database_behind_its_code(tmp_path: Any) -> None:
    url = f"sqlite:///{tmp_path / 'registry.db'}"
    engine = make_engine(url)
    try:
        upgrade_schema(engine, revision=BASELINE_REVISION)
        with engine.begin() as conn:
            conn.execute(text("DELETE FROM alembic_version"))  # a database no migration has touched yet
    finally:
        engine.dispose()
    env = {
        "PATH": "/usr/bin:/bin",
        "DATABASE_URL": url,
        "VAULT_ADDR": "http://127.0.0.1:1",
        "VAULT_TOKEN": "unused",
        "TEMPORAL_ADDRESS": "127.0.0.1:1",
        "LOBSTACK_HOME": str(tmp_path),
    }
    worker = subprocess.run(
        [sys.executable, "-m", "clients.cli", "worker"], env=env, capture_output=True, text=True, timeout=60
    )
    assert worker.returncode == 2, worker.stderr
    assert worker.stderr.count("\n") == 1 and "run `lobstack db upgrade`" in worker.stderr, worker.stderr
    assert "Traceback" not in worker.stderr

    current = subprocess.run(
        [sys.executable, "-m", "clients.cli", "db", "current"], env=env, capture_output=True, text=True
    )
    assert current.returncode == 1 and "no schema" in current.stdout
    upgrade = subprocess.run(
        [sys.executable, "-m", "clients.cli", "db", "upgrade"], env=env, capture_output=True, text=True
    )
    assert upgrade.returncode == 0, upgrade.stderr
    current = subprocess.run(
        [sys.executable, "-m", "clients.cli", "db", "current"], env=env, capture_output=True, text=True
    )
    assert current.returncode == 0 and f"database: {head_revision()}" in current.stdout


def test_the_webhook_revision_adds_an_account_table_under_row_level_security(
    old_database: tuple[Engine, dict[str, Any]],
) -> None:
    from store.webhooks import WebhookStore

    engine, _before = old_database
    upgrade_schema(engine)
    roles = DbRoles.from_env()
    store = WebhookStore(engine, roles)
    store.add("acme", "https://a.example.com/hook", "generic")
    store.add("globex", "https://g.example.com/hook", "slack")
    assert [e.account_id for e in store.endpoints("globex")] == ["globex"]
    if engine.dialect.name == "postgresql":
        with scoped_connection(engine, Scope.of("globex"), roles) as conn:
            assert conn.execute(text("SELECT current_user")).scalar() == roles.service
            assert set(conn.execute(text("SELECT account_id FROM webhook_endpoints")).scalars()) == {"globex"}
            assert conn.execute(text("DELETE FROM webhook_endpoints WHERE account_id = 'acme'")).rowcount == 0
