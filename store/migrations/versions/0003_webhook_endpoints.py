"""Webhook endpoints: where each account's approval notices go, under row-level security like every account table.

Revision ID: 0003
Revises: 0001
Create Date: 2026-12-04

Self-contained (frozen like the baseline): it creates its table and, on PostgreSQL, the grants and the two policies
store.tenancy describes, for the roles the baseline made. The signing secrets live in Vault, never in this table.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context, op

from store.tenancy import DbRoles

revision = "0003"
down_revision: str | None = "0002"
branch_labels: str | None = None
depends_on: str | None = None

_TABLE = "webhook_endpoints"
_ACCOUNT = "account_id = nullif(current_setting('app.account_id', true), '')"
_SYSTEM = "current_setting('app.account_id', true) = '*'"


def upgrade() -> None:
    op.create_table(
        _TABLE,
        sa.Column("endpoint_id", sa.String(32), primary_key=True),
        sa.Column("account_id", sa.String(40), nullable=False),
        sa.Column("url", sa.String(2000), nullable=False),
        sa.Column("format", sa.String(16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_webhook_endpoints_account_id", _TABLE, ["account_id"])
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
