"""The `approval_policies` table (revision 0002): one account's policy per row, under row-level security."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DatabaseError

from contracts.approver_policy import AccountApprovalPolicy, ApproverChange
from contracts.spec import SpecError
from store import upgrade_database
from store.approval_policies import ApprovalPolicies
from store.engine import make_engine
from store.tenancy import DbRoles, Scope, scoped_connection


def test_policies_are_kept_per_account_and_each_account_sees_only_its_own(database_url: str) -> None:
    upgrade_database(database_url)
    engine = make_engine(database_url)
    try:
        policies = ApprovalPolicies(engine=engine)
        assert policies.get("acme") == AccountApprovalPolicy(account_id="acme")
        for name in ("alice", "bob", "alice"):  # adding twice changes nothing
            policies.change(ApproverChange(account_id="acme", action="add", name=name))
        policies.change(
            ApproverChange(account_id="acme", action="policy", four_eyes=True, two_approvals_sizes=["large"])
        )
        policies.change(ApproverChange(account_id="globex", action="add", name="carol"))
        policies.change(ApproverChange(account_id="acme", action="remove", name="bob"))
        policies.change(ApproverChange(account_id="acme", action="remove", name="nobody-here"))
        acme = policies.get("acme")
        assert (acme.approvers, acme.four_eyes, acme.two_approvals_sizes) == (["alice"], True, ["large"])
        assert policies.get("globex").approvers == ["carol"] and not policies.get("globex").four_eyes
        with pytest.raises(SpecError, match="never an approver"):
            policies.change(ApproverChange(account_id="acme", action="add", name="your-name"))
        if engine.dialect.name == "postgresql":
            roles = DbRoles.from_env()
            # Unfiltered SQL as globex's service role: the database keeps acme's row out, and refuses writing it.
            with scoped_connection(engine, Scope.of("globex"), roles) as conn:
                assert conn.execute(text("SELECT current_user")).scalar() == roles.service
                assert set(conn.execute(text("SELECT account_id FROM approval_policies")).scalars()) == {"globex"}
                changed = conn.execute(text("UPDATE approval_policies SET four_eyes = false WHERE account_id = 'acme'"))
                assert changed.rowcount == 0
            with pytest.raises(DatabaseError), scoped_connection(engine, Scope.of("globex"), roles, write=True) as conn:
                conn.execute(
                    text("INSERT INTO approval_policies VALUES ('initech', '[]', false, '[]', '[]', false, now())")
                )
            assert policies.get("acme").four_eyes
    finally:
        engine.dispose()
