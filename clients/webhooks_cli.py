"""Webhook commands of `lobstack`: where an account's approval notices go (contracts/webhooks.py has the formats).

They use the registry at `--database-url`, else DATABASE_URL, else the default SQLite file, and Vault at VAULT_ADDR
with VAULT_TOKEN (the generic format's signing secret and a Slack URL, itself a credential, live there; the
database keeps a Slack URL's host only). `add` prints the secret
once; `--secret-stdin` reads one instead (argv is visible to every user of the machine).

    lobstack webhooks add --account A --url URL [--format generic|slack] [--secret-stdin]
    lobstack webhooks remove --account A (--url URL | --id ID)
    lobstack webhooks list --account A [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

__all__ = ["add_webhook_commands"]


def _webhooks(args: argparse.Namespace) -> Any:
    from clients.cli_common import vault_settings
    from clients.webhooks import Webhooks
    from store import default_database_url

    return Webhooks.open(args.database_url or default_database_url(), vault_settings())


def cmd_webhooks_add(args: argparse.Namespace) -> int:
    from contracts.webhooks import validate_account, validate_webhook_format, validate_webhook_url

    validate_account(args.account)  # refused before Vault or the database are reached
    validate_webhook_url(args.url)
    validate_webhook_format(args.format)
    secret = sys.stdin.readline().strip() if args.secret_stdin else None
    webhooks = _webhooks(args)
    try:
        added = webhooks.add(args.account, args.url, args.format, secret=secret)
    finally:
        webhooks.close()
    e = added.endpoint
    print(f"added webhook {e.endpoint_id} ({e.format}) for account {e.account_id}: {e.url}")
    if added.secret and not args.secret_stdin:
        print(f"signing secret (shown once; verify X-Lobstack-Signature with it): {added.secret}")
    return 0


def cmd_webhooks_remove(args: argparse.Namespace) -> int:
    from clients.cli_common import EXIT_FAILED, CommandFailed
    from contracts.webhooks import validate_account

    validate_account(args.account)
    webhooks = _webhooks(args)
    try:
        removed = webhooks.remove(args.account, args.id or "", url=args.url or "")
    finally:
        webhooks.close()
    if not removed:
        raise CommandFailed(f"account {args.account} has no such webhook; see `lobstack webhooks list`", EXIT_FAILED)
    for e in removed:
        print(f"removed webhook {e.endpoint_id} of account {e.account_id}")
    return 0


def cmd_webhooks_list(args: argparse.Namespace) -> int:
    from contracts.webhooks import validate_account

    validate_account(args.account)
    webhooks = _webhooks(args)
    try:
        found = webhooks.endpoints(args.account)
    finally:
        webhooks.close()
    if args.json:
        rows = [
            {
                "id": e.endpoint_id,
                "format": e.format,
                "url": e.url,
                "created_at": str(e.created_at),
            }
            for e in found
        ]
        print(json.dumps(rows, indent=2))
        return 0
    for e in found:
        print(f"{e.endpoint_id}  {e.format:<7}  {e.url}")
    if not found:
        print(f"account {args.account} has no webhooks", file=sys.stderr)
    return 0


def add_webhook_commands(sub: Any) -> None:
    hooks = sub.add_parser("webhooks", help="where an account's approval notices go (generic signed JSON or Slack)")
    hooks_sub = hooks.add_subparsers(dest="webhooks_command", required=True)
    add = hooks_sub.add_parser("add", help="add a webhook; the generic format's signing secret is printed once")
    add.add_argument("--account", required=True, help="the account whose approvals are announced")
    add.add_argument("--url", required=True, help="http:// or https:// address that receives the notices")
    add.add_argument("--format", default="generic", help="generic (signed JSON, default) or slack")
    add.add_argument("--secret-stdin", action="store_true", help="read the signing secret from stdin")
    add.set_defaults(func=cmd_webhooks_add)
    remove = hooks_sub.add_parser("remove", help="remove a webhook (and its secret)")
    remove.add_argument("--account", required=True)
    remove.add_argument("--url", help="the webhook's URL")
    remove.add_argument("--id", help="the webhook's id (from `lobstack webhooks list`)")
    remove.set_defaults(func=cmd_webhooks_remove)
    listing = hooks_sub.add_parser("list", help="list an account's webhooks")
    listing.add_argument("--account", required=True)
    listing.add_argument("--json", action="store_true", help="JSON instead of lines")
    listing.set_defaults(func=cmd_webhooks_list)
    for command in (add, remove, listing):
        command.add_argument("--database-url", help="registry database (default: DATABASE_URL, else the SQLite file)")
