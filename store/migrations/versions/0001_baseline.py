"""Baseline: the registry as create_schema made it before migrations (tables, audit chain, append-only, RLS).

Revision ID: 0001
Revises:
Create Date: 2026-12-04

Frozen: written out in full rather than derived from store.tables or store.tenancy, so later changes to those modules
never change what this revision does. PostgreSQL gets the two row-level-security roles (store.tenancy explains them),
their grants, the policies and the statement-level append-only trigger on audit_events; SQLite the row triggers.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context, op
from sqlalchemy.dialects import postgresql

from store.tenancy import DbRoles

revision = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None

_ACCOUNT_TABLES = ("agents", "audit_events", "agent_data", "agent_health")
_MUTABLE_TABLES = ("agents", "agent_data", "agent_health")
_ACCOUNT = "account_id = nullif(current_setting('app.account_id', true), '')"
_SYSTEM = "current_setting('app.account_id', true) = '*'"


def _when() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "agents",
        sa.Column("agent_id", sa.String(40), primary_key=True),
        sa.Column("account_id", sa.String(40), nullable=False),
        sa.Column("name", sa.String(63), nullable=False),
        sa.Column("provider", sa.String(32), nullable=False),
        sa.Column("region", sa.String(32), nullable=False),
        sa.Column("size", sa.String(32), nullable=False),
        sa.Column("state", sa.String(32), nullable=False),
        sa.Column("vm_id", sa.String(128), nullable=False),
        sa.Column("address", sa.String(255), nullable=False),
        sa.Column("health", sa.String(32), nullable=False),
        sa.Column("created_at", _when(), nullable=False),
        sa.Column("updated_at", _when(), nullable=False),
        sa.Column("last_error", sa.String(500), nullable=False),
        sa.Column("unhealthy_threshold", sa.Integer(), nullable=False),
    )
    op.create_index("ix_agents_account_id", "agents", ["account_id"])
    op.create_index("ix_agents_state", "agents", ["state"])

    op.create_table(
        "audit_events",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("event_key", sa.String(200), nullable=False, unique=True),
        sa.Column("at", _when(), nullable=False),
        sa.Column("account_id", sa.String(40), nullable=False),
        sa.Column("agent_id", sa.String(40), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("state", sa.String(32), nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("reason", sa.String(1000), nullable=False),
        sa.Column("details", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
    )
    op.create_index("ix_audit_events_account_id", "audit_events", ["account_id"])
    op.create_index("ix_audit_events_agent_id", "audit_events", ["agent_id"])
    op.create_index("uq_audit_events_account_seq", "audit_events", ["account_id", "seq"], unique=True)

    op.create_table(
        "agent_data",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("agent_id", sa.String(40), nullable=False),
        sa.Column("account_id", sa.String(40), nullable=False),
        sa.Column("name", sa.String(63), nullable=False),
        sa.Column("ciphertext", sa.Text(), nullable=False),
        sa.Column("key_version", sa.Integer(), nullable=False),
        sa.Column("updated_at", _when(), nullable=False),
        sa.UniqueConstraint("agent_id", "name", name="uq_agent_data_agent_name"),
    )
    op.create_index("ix_agent_data_agent_id", "agent_data", ["agent_id"])
    op.create_index("ix_agent_data_account_id", "agent_data", ["account_id"])
    op.create_index("ix_agent_data_key_version", "agent_data", ["key_version"])

    op.create_table(
        "agent_health",
        sa.Column("agent_id", sa.String(40), primary_key=True),
        sa.Column("account_id", sa.String(40), nullable=False),
        sa.Column("healthy", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("reason", sa.String(300), nullable=False),
        sa.Column("consecutive_failures", sa.Integer(), nullable=False),
        sa.Column("address", sa.String(255), nullable=False),
        sa.Column("checked_at", _when(), nullable=False),
    )
    op.create_index("ix_agent_health_account_id", "agent_health", ["account_id"])

    if op.get_bind().dialect.name == "postgresql":
        _postgresql_security(context.config.attributes.get("roles") or DbRoles.from_env())
    else:
        for verb in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER audit_events_no_{verb.lower()} BEFORE {verb} ON audit_events "
                "BEGIN SELECT RAISE(ABORT, 'audit_events is append-only'); END"
            )


def _postgresql_security(roles: DbRoles) -> None:
    bind = op.get_bind()
    for role in (roles.service, roles.system):
        if bind.execute(sa.text("SELECT 1 FROM pg_roles WHERE rolname = :r"), {"r": role}).first():
            continue
        # Roles are cluster-wide: a process setting up another database of the cluster may create it at this moment.
        # (DbRoles admits plain lower-case names only: they are spliced in as identifiers.)
        op.execute(
            f"""DO $$ BEGIN
                CREATE ROLE {role} NOLOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
            EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
            END $$"""
        )
    if not bind.execute(sa.text("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")).scalar():
        # The login switches to both roles in every registry transaction; a superuser may already.
        for role in (roles.service, roles.system):
            member = sa.text("SELECT pg_has_role(current_user, :r, 'MEMBER')")
            if not bind.execute(member, {"r": role}).scalar():
                op.execute(f"GRANT {role} TO CURRENT_USER")
    both = f"{roles.service}, {roles.system}"
    op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON {', '.join(_MUTABLE_TABLES)} TO {both}")
    op.execute(f"GRANT SELECT, INSERT ON audit_events TO {both}")
    op.execute(f"GRANT USAGE, SELECT ON SEQUENCE audit_events_id_seq, agent_data_id_seq TO {both}")
    op.execute(
        """CREATE OR REPLACE FUNCTION lobstack_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION 'audit_events is append-only: % refused', TG_OP USING ERRCODE = 'insufficient_privilege';
        END $$"""
    )
    # Statement level: refused even when no row would match, and TRUNCATE has no rows at all.
    op.execute(
        "CREATE TRIGGER audit_events_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON audit_events "
        "FOR EACH STATEMENT EXECUTE FUNCTION lobstack_audit_append_only()"
    )
    for table in _ACCOUNT_TABLES:
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
        op.execute(f"CREATE POLICY lobstack_account ON {table} TO PUBLIC USING ({_ACCOUNT}) WITH CHECK ({_ACCOUNT})")
        op.execute(
            f"CREATE POLICY lobstack_system ON {table} TO {roles.system} USING ({_SYSTEM}) WITH CHECK ({_SYSTEM})"
        )


def downgrade() -> None:
    for table in ("agent_health", "agent_data", "audit_events", "agents"):
        op.drop_table(table)
    if op.get_bind().dialect.name == "postgresql":
        # The roles stay: they are cluster-wide and may serve other databases.
        op.execute("DROP FUNCTION IF EXISTS lobstack_audit_append_only()")
