"""Approval policies: each account's approvers, four eyes, two approvals, identity match (issue 13).

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-04

Under row-level security like the baseline's account tables (store.tenancy): each account sees only its own row;
the system role with '*' sees all.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import context, op
from sqlalchemy.dialects import postgresql

from store.tenancy import DbRoles

revision = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None

_ACCOUNT = "account_id = nullif(current_setting('app.account_id', true), '')"
_SYSTEM = "current_setting('app.account_id', true) = '*'"


def _json() -> sa.types.TypeEngine[Any]:
    return sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "approval_policies",
        sa.Column("account_id", sa.String(40), primary_key=True),
        sa.Column("approvers", _json(), nullable=False),
        sa.Column("four_eyes", sa.Boolean(), nullable=False),
        sa.Column("two_approvals_skills", _json(), nullable=False),
        sa.Column("two_approvals_sizes", _json(), nullable=False),
        sa.Column("require_identity_match", sa.Boolean(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    if op.get_bind().dialect.name != "postgresql":
        return
    roles = context.config.attributes.get("roles") or DbRoles.from_env()
    op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON approval_policies TO {roles.service}, {roles.system}")
    op.execute("ALTER TABLE approval_policies ENABLE ROW LEVEL SECURITY")
    op.execute("ALTER TABLE approval_policies FORCE ROW LEVEL SECURITY")
    op.execute(
        f"CREATE POLICY lobstack_account ON approval_policies TO PUBLIC USING ({_ACCOUNT}) WITH CHECK ({_ACCOUNT})"
    )
    op.execute(
        f"CREATE POLICY lobstack_system ON approval_policies TO {roles.system} USING ({_SYSTEM}) WITH CHECK ({_SYSTEM})"
    )


def downgrade() -> None:
    op.drop_table("approval_policies")
