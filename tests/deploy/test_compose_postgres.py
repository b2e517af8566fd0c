"""deploy/compose/postgres/init-lobstack.sh, run for real: with psql against the machine's PostgreSQL (as the compose
image's entrypoint runs it, as the superuser), on a fresh database with fresh role names, then the registry's schema
(roles, grants, row-level security: the baseline migration) created through the login it made, a registry write and an
account-scoped read through it, and a real `lobstack worker` process starting with that login.

The login is no superuser and cannot create roles: before, the schema set-up failed on a fresh cluster with `permission
denied to create role`, and where the roles existed with `must have admin option on role "lobstack_service"`."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy
from temporalio.testing import WorkflowEnvironment

import devstack
from contracts.models import AgentState, Transition
from devstack import OpenBaoDev
from store import Registry, upgrade_database
from store.tenancy import DbRoles
from tests.deploy.support import DEPLOY
from tests.stack import orchestrator_token

INIT = DEPLOY / "compose" / "postgres" / "init-lobstack.sh"
pytestmark = pytest.mark.postgres


def _admin(admin_url: str, *statements: str) -> None:
    engine = sqlalchemy.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            for statement in statements:
                conn.exec_driver_sql(statement)
    finally:
        engine.dispose()


@pytest.fixture
def initialised(postgres_admin_url: str) -> Iterator[tuple[str, DbRoles, dict[str, str]]]:
    """Run the init script with names unique to this run (roles are cluster-wide); drop all of it afterwards."""
    suffix = uuid.uuid4().hex[:10]
    names = {
        "LOBSTACK_DB_NAME": f"lobstack_init_{suffix}",
        "LOBSTACK_DB_USER": f"lobstack_login_{suffix}",
        "LOBSTACK_DB_SERVICE_ROLE": f"lobstack_service_{suffix}",
        "LOBSTACK_DB_SYSTEM_ROLE": f"lobstack_system_{suffix}",
    }
    password = secrets.token_urlsafe(18)
    admin = sqlalchemy.make_url(postgres_admin_url)
    env = {
        **os.environ,
        "PGHOST": admin.host or "127.0.0.1",
        "PGPORT": str(admin.port or 5432),
        "POSTGRES_USER": admin.username or "postgres",
        "LOBSTACK_DB_PASSWORD": password,
        **names,
    }
    try:
        done = subprocess.run(["sh", str(INIT)], env=env, capture_output=True, text=True, timeout=60, check=False)
        assert done.returncode == 0, done.stdout + done.stderr
        url = admin.set(
            username=names["LOBSTACK_DB_USER"], password=password, database=names["LOBSTACK_DB_NAME"]
        ).render_as_string(hide_password=False)
        roles = DbRoles(service=names["LOBSTACK_DB_SERVICE_ROLE"], system=names["LOBSTACK_DB_SYSTEM_ROLE"])
        yield url, roles, names
    finally:
        _admin(
            postgres_admin_url,
            f'DROP DATABASE IF EXISTS "{names["LOBSTACK_DB_NAME"]}" WITH (FORCE)',
            *(
                f'DROP ROLE IF EXISTS "{names[key]}"'
                for key in ("LOBSTACK_DB_USER", "LOBSTACK_DB_SERVICE_ROLE", "LOBSTACK_DB_SYSTEM_ROLE")
            ),
        )


def test_init_script_login_creates_the_schema_writes_and_runs_a_worker(
    initialised: tuple[str, DbRoles, dict[str, str]],
    postgres_admin_url: str,
    temporal_dev: WorkflowEnvironment,
    openbao: OpenBaoDev,
    tmp_path: Path,
) -> None:
    url, roles, names = initialised
    login = names["LOBSTACK_DB_USER"]

    # The login holds no power beyond its own database: no superuser, no role creation, no RLS bypass.
    engine = sqlalchemy.create_engine(postgres_admin_url)
    try:
        with engine.connect() as conn:
            flags = conn.execute(
                sqlalchemy.text(
                    "SELECT rolsuper, rolcreaterole, rolbypassrls, rolcanlogin FROM pg_roles WHERE rolname=:r"
                ),
                {"r": login},
            ).one()
    finally:
        engine.dispose()
    assert tuple(flags) == (False, False, False, True)

    # The product's schema creation through that login (`lobstack db upgrade`, the compose file's one-shot service),
    # then a write as the system role and reads as one account's service role: row-level security in force.
    upgrade_database(url, roles)
    registry = Registry.from_url(url, roles=roles)
    try:
        registry.record(
            Transition(
                event_key=f"init-{uuid.uuid4().hex}",
                agent_id="a-init",
                account_id="acct-a",
                state=AgentState.PROVISIONING,
                action="vm.created",
                at=datetime.now(UTC),
                actor="test",
            )
        )
        assert [row.agent_id for row in registry.for_account("acct-a").list_agents()] == ["a-init"]
        assert registry.for_account("acct-b").list_agents() == []
        with registry.engine.connect() as conn:
            assert conn.execute(sqlalchemy.text("SELECT current_user")).scalar() == login
    finally:
        registry.close()

    # A real `lobstack worker` with that login: it checks the schema is current at start, then polls.
    env = {
        **os.environ,
        "TEMPORAL_ADDRESS": temporal_dev.client.service_client.config.target_host,
        "VAULT_ADDR": openbao.addr,
        "VAULT_TOKEN": orchestrator_token(openbao),
        "DATABASE_URL": url,
        "LOBSTACK_DB_SERVICE_ROLE": roles.service,
        "LOBSTACK_DB_SYSTEM_ROLE": roles.system,
        "LOBSTACK_HOME": str(tmp_path / "home"),
        "LOBSTACK_PROVIDERS": "local",
        "LOBSTACK_TASK_QUEUE": f"init-{uuid.uuid4().hex[:10]}",
    }
    worker = devstack.spawn("worker", [devstack.lobstack_binary(), "worker"], tmp_path / "worker.log", env=env)
    try:
        deadline = time.monotonic() + 60
        while "worker polling" not in worker.log_text():
            assert worker.popen.poll() is None, f"worker exited with {worker.popen.returncode}:\n{worker.log_text()}"
            assert time.monotonic() < deadline, f"worker not polling after 60 s:\n{worker.log_text()}"
            time.sleep(0.1)
    finally:
        worker.popen.send_signal(signal.SIGTERM)
        code = worker.popen.wait(30)
    assert code == 0, worker.log_text()
    assert "must have admin option" not in worker.log_text() and "permission denied" not in worker.log_text()
