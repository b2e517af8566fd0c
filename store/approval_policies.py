"""Each account's approvers and approval policy (table `approval_policies`), read and changed for that account only.

Every call runs in a transaction scoped to the account (store.tenancy): PostgreSQL's row-level security keeps other
accounts' rows out, and on SQLite `Scope.limit` does. An account with no row has the empty policy: no approvers.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, RowMapping, select
from sqlalchemy.dialects import postgresql, sqlite

from contracts.approver_policy import AccountApprovalPolicy, ApproverChange, apply_change, validate_change
from contracts.spec import validate_approvers
from store.tables import APPROVAL_POLICIES
from store.tenancy import DbRoles, Scope, scoped_connection

__all__ = ["ApprovalPolicies"]

_T = APPROVAL_POLICIES
_FIELDS = ("approvers", "four_eyes", "two_approvals_skills", "two_approvals_sizes", "require_identity_match")


def _policy(account_id: str, row: RowMapping | None) -> AccountApprovalPolicy:
    if row is None:
        return AccountApprovalPolicy(account_id=account_id)
    return AccountApprovalPolicy(
        account_id=account_id,
        approvers=list(row["approvers"]),
        four_eyes=bool(row["four_eyes"]),
        two_approvals_skills=list(row["two_approvals_skills"]),
        two_approvals_sizes=list(row["two_approvals_sizes"]),
        require_identity_match=bool(row["require_identity_match"]),
    )


class ApprovalPolicies:
    def __init__(self, *, engine: Engine, roles: DbRoles | None = None) -> None:
        self.engine = engine
        self.roles = roles or DbRoles.from_env()
        self._insert: Any = postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert

    def get(self, account_id: str) -> AccountApprovalPolicy:
        scope = Scope.of(account_id)
        with scoped_connection(self.engine, scope, self.roles) as conn:
            query = scope.limit(select(_T).where(_T.c.account_id == account_id), _T)
            return _policy(account_id, conn.execute(query).mappings().first())

    def save(self, policy: AccountApprovalPolicy) -> None:
        """Store `policy` whole (an operator's import or a test's set-up), checked as a change would be."""
        validate_change(
            ApproverChange(
                account_id=policy.account_id,
                action="policy",
                four_eyes=policy.four_eyes,
                two_approvals_skills=policy.two_approvals_skills,
                two_approvals_sizes=policy.two_approvals_sizes,
                require_identity_match=policy.require_identity_match,
            )
        )
        validate_approvers("approvers", policy.approvers)
        with scoped_connection(self.engine, Scope.of(policy.account_id), self.roles, write=True) as conn:
            self._upsert(conn, policy)

    def _upsert(self, conn: Connection, policy: AccountApprovalPolicy) -> None:
        values = {name: getattr(policy, name) for name in _FIELDS}
        insert = self._insert(_T).values(account_id=policy.account_id, updated_at=datetime.now(UTC), **values)
        conn.execute(
            insert.on_conflict_do_update(
                index_elements=[_T.c.account_id], set_={**values, "updated_at": insert.excluded.updated_at}
            )
        )

    def change(self, change: ApproverChange) -> AccountApprovalPolicy:
        """Apply `change` and return the policy after it; idempotent (a retry finds it applied and changes nothing)."""
        validate_change(change)
        scope = Scope.of(change.account_id)
        if change.action == "show":
            return self.get(change.account_id)
        with scoped_connection(self.engine, scope, self.roles, write=True, immediate=True) as conn:
            query = scope.limit(select(_T).where(_T.c.account_id == change.account_id), _T)
            if conn.dialect.name == "postgresql":
                query = query.with_for_update()
            before = _policy(change.account_id, conn.execute(query).mappings().first())
            after = apply_change(before, change)
            self._upsert(conn, after)
            return after
