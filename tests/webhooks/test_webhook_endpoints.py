"""Webhook endpoints in the registry (SQLite and PostgreSQL) and their signing secrets in Vault, through the client
module and the `lobstack webhooks` commands: field-named refusals, per-account isolation, the secret never stored in
the database."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from activities.webhooks import SLACK_URL, WebhookSecrets
from clients.webhooks import Webhooks
from contracts.spec import SpecError
from store.tenancy import Scope, scoped_connection
from store.webhooks import WebhookStore
from tests.clients.cli_run import arun, assert_failed, assert_ok
from tests.stack import Stack

SLACK = "https://hooks.slack.com/services/T0/B0/x"


def admin(stack: Stack) -> Webhooks:
    return Webhooks(WebhookStore(stack.registry.engine, stack.registry.roles), WebhookSecrets(stack.vault.settings))


def test_an_endpoint_is_kept_per_account_and_its_secret_only_in_vault(stack_any_db: Stack) -> None:
    hooks = admin(stack_any_db)
    added = hooks.add("acme", "https://hooks.example.com/lobstack", "generic")
    slack = hooks.add("acme", SLACK, "slack")
    other = hooks.add("globex", "https://globex.example.com/hook", "generic")
    assert added.secret.startswith("whsec_") and len(added.secret) > 40 and not slack.secret

    assert [e.endpoint_id for e in hooks.endpoints("acme")] == [added.endpoint.endpoint_id, slack.endpoint.endpoint_id]
    assert [e.url for e in hooks.endpoints("globex")] == ["https://globex.example.com/hook"]
    assert hooks.secrets.read("acme", added.endpoint.endpoint_id) == added.secret
    # A Slack URL is its own credential: Vault holds it, the registry its host and a fingerprint only.
    assert hooks.secrets.read("acme", slack.endpoint.endpoint_id, SLACK_URL) == SLACK
    assert slack.endpoint.url.startswith("https://hooks.slack.com/...#sha256=")
    with stack_any_db.registry.engine.connect() as conn:
        dumped = repr(conn.execute(text("SELECT * FROM webhook_endpoints")).all())
    assert added.secret not in dumped and other.secret not in dumped and "T0/B0" not in dumped
    with pytest.raises(SpecError, match="url: is already a webhook of this account"):
        hooks.add("acme", SLACK, "slack")

    registry = stack_any_db.registry
    if registry.engine.dialect.name == "postgresql":
        with scoped_connection(registry.engine, Scope.of("globex"), registry.roles) as conn:
            # Unfiltered SQL as globex's service role: row-level security hides acme's rows.
            assert set(conn.execute(text("SELECT account_id FROM webhook_endpoints")).scalars()) == {"globex"}
    # Another account cannot remove (or see) acme's endpoint by its id.
    assert hooks.remove("globex", added.endpoint.endpoint_id) == []
    assert hooks.remove("acme", url="https://hooks.example.com/lobstack") == [added.endpoint]
    assert hooks.secrets.read("acme", added.endpoint.endpoint_id) is None
    assert [e.format for e in hooks.endpoints("acme")] == ["slack"]
    assert hooks.remove("acme", url=SLACK) == [slack.endpoint]  # found by its fingerprint
    assert hooks.secrets.read("acme", slack.endpoint.endpoint_id, SLACK_URL) is None


@pytest.mark.parametrize(
    ("account", "url", "fmt", "field"),
    [
        ("acme", "ftp://hooks.example.com/x", "generic", "url"),
        ("acme", "hooks.example.com/x", "generic", "url"),
        ("acme", "https://user:pw@hooks.example.com/x", "generic", "url"),
        ("acme", "https://hooks.example.com/x", "teams", "format"),
        ("Not An Account", "https://hooks.example.com/x", "generic", "account"),
    ],
)
def test_bad_input_is_refused_naming_the_field_before_anything_is_stored(
    stack: Stack, account: str, url: str, fmt: str, field: str
) -> None:
    with pytest.raises(SpecError) as refused:
        admin(stack).add(account, url, fmt)
    assert refused.value.field == field
    with stack.registry.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM webhook_endpoints")).scalar() == 0


@pytest.mark.asyncio(loop_scope="session")
async def test_the_cli_adds_lists_and_removes_printing_the_secret_once(stack: Stack) -> None:
    env = {
        "VAULT_ADDR": stack.vault.settings.addr,
        "VAULT_TOKEN": stack.vault.settings.token,
        "DATABASE_URL": str(stack.registry.engine.url),
    }
    url = "https://hooks.example.com/cli"
    added = await arun("webhooks", "add", "--account", "acme", "--url", url, env=env)
    assert_ok(added)
    secret = added.out.split("signing secret (shown once; verify X-Lobstack-Signature with it): ")[1].strip()
    [endpoint] = admin(stack).endpoints("acme")
    assert admin(stack).secrets.read("acme", endpoint.endpoint_id) == secret

    listed = await arun("webhooks", "list", "--account", "acme", env=env)
    assert_ok(listed)
    assert endpoint.endpoint_id in listed.out and url in listed.out and secret not in listed.out

    refused = await arun("webhooks", "add", "--account", "acme", "--url", "mailto:x@example.com", env=env)
    assert_failed(refused, 2, "url: must start with http:// or https://")

    assert_ok(await arun("webhooks", "remove", "--account", "acme", "--url", url, env=env))
    assert admin(stack).endpoints("acme") == []
    assert_failed(await arun("webhooks", "remove", "--account", "acme", "--url", url, env=env), 1, "no such webhook")
