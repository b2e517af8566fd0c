"""Account limits: each account's quotas (agents, vCPUs, monthly spend) and agent lifetimes (issue 14).

Also each agent's monthly list price (`agents.monthly_usd_cents`, `monthly_eur_cents`), which spend quotas add up;
agents registered before it count as costing nothing.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-05

Self-contained like 0003: the table and, on PostgreSQL, the grants and the two row-level security policies
store.tenancy describes, for the roles the baseline made.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context, op

from store.tenancy import DbRoles

revision = "0004"
down_revision: str | None = "0003"
branch_labels: str | None = None
depends_on: str | None = None

_TABLE = "account_limits"
_ACCOUNT = "account_id = nullif(current_setting('app.account_id', true), '')"
_SYSTEM = "current_setting('app.account_id', true) = '*'"


def upgrade() -> None:
    op.create_table(
        _TABLE,
        sa.Column("account_id", sa.String(40), primary_key=True),
        sa.Column("max_agents", sa.Integer(), nullable=False),
        sa.Column("max_vcpus", sa.Integer(), nullable=False),
        sa.Column("max_monthly_usd", sa.Integer(), nullable=False),
        sa.Column("max_monthly_eur", sa.Integer(), nullable=False),
        sa.Column("default_max_lifetime_s", sa.Integer(), nullable=False),
        sa.Column("default_idle_timeout_s", sa.Integer(), nullable=False),
        sa.Column("max_lifetime_s", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    for column in ("monthly_usd_cents", "monthly_eur_cents"):
        op.add_column("agents", sa.Column(column, sa.Integer(), nullable=False, server_default="0"))
    if op.get_bind().dialect.name != "postgresql":
        return
    roles: DbRoles = context.config.attributes.get("roles") or DbRoles.from_env()
    op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON {_TABLE} TO {roles.service}, {roles.system}")
    op.execute(f"ALTER TABLE {_TABLE} ENABLE ROW LEVEL SECURITY")
    op.execute(f"ALTER TABLE {_TABLE} FORCE ROW LEVEL SECURITY")
    op.execute(f"CREATE POLICY lobstack_account ON {_TABLE} TO PUBLIC USING ({_ACCOUNT}) WITH CHECK ({_ACCOUNT})")
    op.execute(f"CREATE POLICY lobstack_system ON {_TABLE} TO {roles.system} USING ({_SYSTEM}) WITH CHECK ({_SYSTEM})")


def downgrade() -> None:
    op.drop_table(_TABLE)
    with op.batch_alter_table("agents") as batch:
        batch.drop_column("monthly_eur_cents")
        batch.drop_column("monthly_usd_cents")
