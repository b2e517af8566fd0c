"""The `webhook_endpoints` table: where an account's approval notices go. Every call runs for one account.

On PostgreSQL row-level security keeps each account to its rows (store.tenancy); on SQLite `Scope.limit` does. The
generic format's signing secret is never stored here (activities/webhooks.py keeps it in Vault).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlalchemy import Engine, RowMapping, delete, insert, select

from contracts.spec import SpecError
from contracts.webhooks import WebhookEndpoint, validate_account, validate_webhook_format, validate_webhook_url
from store.tables import WEBHOOK_ENDPOINTS
from store.tenancy import DbRoles, Scope, scoped_connection

__all__ = ["WebhookStore"]

_T = WEBHOOK_ENDPOINTS
# An account with more endpoints than this is a mistake, and each one costs an activity per notice.
MAX_ENDPOINTS = 20


def _endpoint(row: RowMapping) -> WebhookEndpoint:
    return WebhookEndpoint(
        endpoint_id=row["endpoint_id"],
        account_id=row["account_id"],
        url=row["url"],
        format=row["format"],
        created_at=row["created_at"],
    )


class WebhookStore:
    def __init__(self, engine: Engine, roles: DbRoles | None = None) -> None:
        self.engine = engine
        self.roles = roles or DbRoles.from_env()

    @staticmethod
    def new_id() -> str:
        return f"wh-{uuid.uuid4().hex[:12]}"

    def add(self, account_id: str, url: str, fmt: str, *, endpoint_id: str = "") -> WebhookEndpoint:
        """A new endpoint; the URL and the format are checked first (SpecError naming the field)."""
        validate_account(account_id)
        scope = Scope.of(account_id)
        validate_webhook_url(url)
        validate_webhook_format(fmt)
        endpoint = WebhookEndpoint(
            endpoint_id=endpoint_id or self.new_id(),
            account_id=account_id,
            url=url,
            format=fmt,
            created_at=datetime.now(UTC),
        )
        with scoped_connection(self.engine, scope, self.roles, write=True, immediate=True) as conn:
            count = len(conn.execute(scope.limit(select(_T.c.endpoint_id), _T)).all())
            if count >= MAX_ENDPOINTS:
                raise SpecError("url", f"account {account_id} already has {MAX_ENDPOINTS} webhooks; remove one first")
            conn.execute(
                insert(_T).values(
                    endpoint_id=endpoint.endpoint_id,
                    account_id=account_id,
                    url=url,
                    format=fmt,
                    created_at=endpoint.created_at,
                )
            )
        return endpoint

    def endpoints(self, account_id: str) -> list[WebhookEndpoint]:
        scope = Scope.of(account_id)
        with scoped_connection(self.engine, scope, self.roles) as conn:
            rows = conn.execute(scope.limit(select(_T), _T).order_by(_T.c.created_at, _T.c.endpoint_id)).mappings()
            return [_endpoint(row) for row in rows]

    def get(self, account_id: str, endpoint_id: str) -> WebhookEndpoint | None:
        scope = Scope.of(account_id)
        with scoped_connection(self.engine, scope, self.roles) as conn:
            row = conn.execute(scope.limit(select(_T).where(_T.c.endpoint_id == endpoint_id), _T)).mappings().first()
            return None if row is None else _endpoint(row)

    def find(self, account_id: str, *, endpoint_id: str = "", url: str = "") -> list[WebhookEndpoint]:
        """The account's endpoints with this id, or with this URL."""
        return [e for e in self.endpoints(account_id) if e.endpoint_id == endpoint_id or (url and e.url == url)]

    def remove(self, account_id: str, endpoint_id: str) -> bool:
        """False when the account has no such endpoint (another account's id is never removed)."""
        scope = Scope.of(account_id)
        with scoped_connection(self.engine, scope, self.roles, write=True) as conn:
            done = conn.execute(scope.limit(delete(_T).where(_T.c.endpoint_id == endpoint_id), _T))
            return done.rowcount > 0
