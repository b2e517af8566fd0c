"""Tenant isolation: an account's registry reaches only its own rows; on PostgreSQL RLS holds for any SQL too."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import pytest
import sqlalchemy
from sqlalchemy import Connection, text
from sqlalchemy.exc import DatabaseError, ProgrammingError

from contracts.models import AgentState
from contracts.spec import SpecError
from store import AccountRegistry, DbRoles, HealthRecord, Registry, enable_row_level_security, upgrade_database
from store.tenancy import ACCOUNT_TABLES, SYSTEM, Scope, scoped_connection
from tests.store.helpers import transition

NOW = datetime(2025, 6, 1, tzinfo=UTC)


@pytest.fixture
def registry(database_url: str) -> Iterator[Registry]:
    upgrade_database(database_url)
    with Registry.from_url(database_url) as reg:
        for agent_id, account_id in (("a1", "acme"), ("a2", "acme"), ("b1", "globex")):
            reg.record(transition(event_key=f"{agent_id}/1", agent_id=agent_id, account_id=account_id, state="running"))
            reg.put_agent_data(
                agent_id=agent_id, account_id=account_id, name="smtp", ciphertext=f"vault:v1:{agent_id}", key_version=1
            )
        reg.save_health([HealthRecord(a, True, "healthy", 0, f"http://{a}", NOW) for a in ("a1", "a2", "b1")])
        yield reg


# --- through the registry: the same rule on SQLite and PostgreSQL ----------------------------------------------------


def test_an_account_reads_only_its_own_rows(registry: Registry) -> None:
    acme = registry.for_account("acme")
    assert isinstance(acme, AccountRegistry) and acme.account_id == "acme"

    assert [a.agent_id for a in acme.list_agents()] == ["a1", "a2"]
    assert acme.list_agents(account_id="globex") == []
    assert acme.get("b1") is None and not acme.exists("b1")
    assert acme.get("a1") is not None
    assert {e.agent_id for e in acme.events()} == {"a1", "a2"}
    assert acme.events(agent_id="b1") == [] and acme.event_details("b1/1") is None
    assert acme.agent_data("b1", "smtp") is None and acme.agent_data_of("b1") == []
    assert acme.agent_data_counts() == {"a1": 1, "a2": 1}
    assert set(acme.health_all()) == {"a1", "a2"}
    report = acme.verify_audit()
    assert report.ok and (report.accounts, report.events) == (1, 2)
    assert acme.verify_audit("globex").events == 0
    assert {row["account_id"] for row in acme.export_audit()} == {"acme"}
    # The system view still sees everything.
    assert len(registry.list_agents()) == 3 and registry.verify_audit().accounts == 2


def test_an_account_cannot_change_or_delete_another_accounts_rows(registry: Registry) -> None:
    acme = registry.for_account("acme")

    assert not acme.replace_ciphertext("b1", "smtp", old="vault:v1:b1", new="vault:v2:x", key_version=2)
    assert acme.delete_agent_data("b1") == 0
    acme.save_health([HealthRecord("b1", False, "unreachable", 9, "http://evil", NOW)])
    assert registry.prune_health() == 0
    acme.prune_health()

    b1 = registry.agent_data("b1", "smtp")
    assert b1 is not None and b1.ciphertext == "vault:v1:b1"
    assert registry.health_all()["b1"].consecutive_failures == 0
    agent = registry.get("b1")
    assert agent is not None and agent.health == "healthy"


def test_an_account_cannot_write_for_another_account(registry: Registry) -> None:
    acme = registry.for_account("acme")
    with pytest.raises(SpecError, match="account_id"):
        acme.record(transition(event_key="x/1", agent_id="x1", account_id="globex"))
    with pytest.raises(SpecError, match="account_id"):
        acme.put_agent_data(agent_id="x1", account_id="globex", name="smtp", ciphertext="c", key_version=1)
    # Its own account id on another account's agent: refused, and nothing of it is kept.
    with pytest.raises(SpecError, match="another account"):
        acme.record(transition(event_key="b1/steal", agent_id="b1", account_id="acme", state="destroyed"))
    with pytest.raises(SpecError, match="another account"):
        acme.put_agent_data(agent_id="b1", account_id="acme", name="smtp", ciphertext="c", key_version=1)
    assert registry.event_details("b1/steal") is None
    agent = registry.get("b1")
    assert agent is not None and (agent.account_id, agent.state) == ("globex", AgentState.RUNNING)
    with pytest.raises(SpecError, match="account_id"):
        acme.for_account("globex")

    assert acme.record(transition(event_key="a3/1", agent_id="a3", account_id="acme"))
    assert [e.seq for e in acme.events(agent_id="a3")] == [3]
    assert registry.verify_audit().ok


@pytest.mark.parametrize("account", ["", "*", "x" * 41])
def test_no_account_registry_for_the_system_setting_or_a_bad_id(registry: Registry, account: str) -> None:
    with pytest.raises(SpecError, match="account_id"):
        registry.for_account(account)


# --- PostgreSQL: the database enforces it, whatever the SQL ----------------------------------------------------------


# Row-level security is PostgreSQL's: these tests take only the PostgreSQL case of `database_url`.
postgres_only = pytest.mark.parametrize(
    "database_url", [pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True
)
Login = Callable[[str], sqlalchemy.Engine]


@pytest.fixture
def pg_registry(registry: Registry) -> Registry:
    assert registry.engine.dialect.name == "postgresql"
    return registry


@pytest.fixture
def login_as(pg_registry: Registry, postgres_admin_url: str) -> Iterator[Login]:
    """Connect as a fresh LOGIN role (unique name, dropped afterwards) that is a member of the given role only."""
    admin = sqlalchemy.create_engine(postgres_admin_url, isolation_level="AUTOCOMMIT")
    made: list[tuple[str, sqlalchemy.Engine]] = []

    def login(member_of: str) -> sqlalchemy.Engine:
        name = f"lobstack_t_login_{uuid.uuid4().hex[:10]}"
        with admin.connect() as conn:
            conn.execute(text(f"CREATE ROLE {name} LOGIN NOSUPERUSER NOBYPASSRLS IN ROLE {member_of}"))
        engine = sqlalchemy.create_engine(pg_registry.engine.url.set(username=name))
        made.append((name, engine))
        return engine

    yield login
    for name, engine in made:
        engine.dispose()
        with admin.connect() as conn:
            conn.execute(text(f"DROP ROLE IF EXISTS {name}"))
    admin.dispose()


def _set_account(conn: Connection, account: str) -> None:
    conn.execute(text("SELECT set_config('app.account_id', :a, true)"), {"a": account})


@postgres_only
def test_the_registrys_own_session_is_limited_by_the_database(pg_registry: Registry) -> None:
    # Unfiltered SQL in an account's registry transaction: RLS alone keeps the other account out.
    with scoped_connection(pg_registry.engine, Scope.of("acme"), pg_registry.roles, write=True) as conn:
        assert conn.execute(text("SELECT current_user")).scalar() == pg_registry.roles.service
        for table in ACCOUNT_TABLES:
            accounts = set(conn.execute(text(f"SELECT account_id FROM {table}")).scalars())
            assert accounts == {"acme"}, table
        assert conn.execute(text("UPDATE agents SET name = 'x'")).rowcount == 2
        assert conn.execute(text("DELETE FROM agent_data")).rowcount == 2
    record = pg_registry.get("b1")
    assert record is not None and record.name == "helper"
    assert pg_registry.agent_data("b1", "smtp") is not None
    with scoped_connection(pg_registry.engine, SYSTEM, pg_registry.roles) as conn:
        assert conn.execute(text("SELECT current_user")).scalar() == pg_registry.roles.system
        assert conn.execute(text("SELECT count(*) FROM agents")).scalar() == 3


@postgres_only
def test_the_service_role_cannot_read_change_or_insert_another_accounts_rows(
    pg_registry: Registry, login_as: Login
) -> None:
    service = login_as(pg_registry.roles.service)
    with service.connect() as conn:
        # No account set: nothing at all.
        for table in ACCOUNT_TABLES:
            assert conn.execute(text(f"SELECT count(*) FROM {table}")).scalar() == 0, table
        conn.rollback()

        _set_account(conn, "acme")
        for table in ACCOUNT_TABLES:
            assert set(conn.execute(text(f"SELECT account_id FROM {table}")).scalars()) == {"acme"}, table
        for table in ("agents", "agent_data", "agent_health"):
            assert (
                conn.execute(text(f"UPDATE {table} SET account_id = 'acme' WHERE account_id = 'globex'")).rowcount == 0
            )
            assert conn.execute(text(f"DELETE FROM {table} WHERE account_id = 'globex'")).rowcount == 0
        # Moving its own row to the other account is refused by WITH CHECK.
        with pytest.raises(ProgrammingError, match="row-level security"):
            conn.execute(text("UPDATE agents SET account_id = 'globex' WHERE agent_id = 'a1'"))
        conn.rollback()

        _set_account(conn, "acme")
        with pytest.raises(ProgrammingError, match="row-level security"):
            conn.execute(
                text(
                    "INSERT INTO agents (agent_id, account_id, name, provider, region, size, state, vm_id, address,"
                    " health, created_at, updated_at, last_error)"
                    " VALUES ('b9', 'globex', '', '', '', '', 'running', '', '', 'unknown', now(), now(), '')"
                )
            )
        conn.rollback()

        # '*' is the system's, not the service's: it matches nothing here.
        _set_account(conn, "*")
        assert conn.execute(text("SELECT count(*) FROM agents")).scalar() == 0
        conn.rollback()
        # The audit trail is append-only for the service, its own rows included.
        _set_account(conn, "acme")
        with pytest.raises(ProgrammingError, match="permission denied"):
            conn.execute(text("UPDATE audit_events SET reason = 'x'"))
        conn.rollback()
    b1 = pg_registry.get("b1")
    assert b1 is not None and b1.account_id == "globex"


@postgres_only
@pytest.mark.parametrize(
    "escape",
    [
        "SET row_security = off",
        "ALTER TABLE agents DISABLE ROW LEVEL SECURITY",
        "ALTER TABLE agents NO FORCE ROW LEVEL SECURITY",
        "DROP POLICY lobstack_account ON agents",
        "SET ROLE lobstack_system",
        "SET ROLE postgres",
        "ALTER TABLE audit_events DISABLE TRIGGER audit_events_append_only",
    ],
)
def test_the_service_role_cannot_switch_row_security_off(pg_registry: Registry, login_as: Login, escape: str) -> None:
    service = login_as(pg_registry.roles.service)
    escape = escape.replace("lobstack_system", pg_registry.roles.system)
    with service.connect() as conn:
        try:
            conn.execute(text(escape))
        except DatabaseError as exc:
            assert "must be owner" in str(exc) or "permission denied" in str(exc)
            conn.rollback()
            return
        # SET row_security = off is accepted, but then any query RLS would filter is an error, not a bypass.
        _set_account(conn, "acme")
        with pytest.raises(ProgrammingError, match="row-level security"):
            conn.execute(text("SELECT count(*) FROM agents"))


@postgres_only
def test_the_system_role_passes_only_with_the_explicit_setting(pg_registry: Registry, login_as: Login) -> None:
    system = login_as(pg_registry.roles.system)
    with system.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM agents")).scalar() == 0  # forgot to say '*'
        _set_account(conn, "*")
        assert conn.execute(text("SELECT count(*) FROM agents")).scalar() == 3
        conn.rollback()
        _set_account(conn, "globex")
        assert set(conn.execute(text("SELECT agent_id FROM agents")).scalars()) == {"b1"}
        conn.rollback()


@postgres_only
def test_enable_row_level_security_is_idempotent(pg_registry: Registry) -> None:
    enable_row_level_security(pg_registry.engine)
    enable_row_level_security(pg_registry.engine, DbRoles())
    with pg_registry.engine.connect() as conn:
        rows = conn.execute(
            text("SELECT relname, relrowsecurity, relforcerowsecurity FROM pg_class WHERE relname = ANY(:t)"),
            {"t": list(ACCOUNT_TABLES)},
        ).all()
        assert sorted(rows) == sorted((t, True, True) for t in ACCOUNT_TABLES)
        count = conn.execute(
            text("SELECT count(*) FROM pg_policies WHERE tablename = ANY(:t)"), {"t": list(ACCOUNT_TABLES)}
        )
        assert count.scalar() == 2 * len(ACCOUNT_TABLES)
        flags = conn.execute(
            text("SELECT rolsuper, rolbypassrls, rolcanlogin FROM pg_roles WHERE rolname = ANY(:r)"),
            {"r": [pg_registry.roles.service, pg_registry.roles.system]},
        ).all()
        assert flags == [(False, False, False)] * 2
    assert len(pg_registry.list_agents()) == 3


def test_bad_role_names_are_refused() -> None:
    with pytest.raises(ValueError, match="not allowed"):
        DbRoles(service="svc; DROP TABLE agents")
    with pytest.raises(ValueError, match="differ"):
        DbRoles(service="same", system="same")
