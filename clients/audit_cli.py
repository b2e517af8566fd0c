"""Audit commands of `lobstack`: check the audit trail's hash chains and export it.

`add_audit_commands(subparsers)` adds them to the CLI's parser. Both read the registry at `--database-url`, else
`DATABASE_URL`, else the default SQLite file (store.default_database_url), as the system (every account) unless
`--account` narrows them to one. They never contact Temporal. Failures are reported by the CLI's main as one line
with the statuses of `clients.cli_common` (an unreachable database exits 3, an unusable URL 2).

    lobstack audit verify [--account A] [--database-url URL]     exit 0: every chain holds; 1: the first broken link
    lobstack audit export [--account A] [--output FILE] [--database-url URL]   JSON lines in chain order (stdout)
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, TextIO

__all__ = ["add_audit_commands"]

EXIT_OK = 0
EXIT_BROKEN = 1


def _registry(args: argparse.Namespace) -> Any:
    from clients.cli_common import open_registry

    return open_registry(args.database_url)


def _account(text: str) -> str:
    from clients.cli_common import validate_account_id
    from store.tenancy import Scope

    try:
        validate_account_id(text)  # an empty or blank --account is refused, never read as "every account"
        Scope.of(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def cmd_audit_verify(args: argparse.Namespace) -> int:
    registry = _registry(args)
    try:
        report = registry.verify_audit(args.account)
    finally:
        registry.close()
    if report.broken is not None:
        print(report.describe(), file=sys.stderr)
        return EXIT_BROKEN
    print(report.describe())
    # The heads are what to keep outside the database: a chain cannot show that its newest events went missing.
    for account, (seq, head) in sorted(report.heads.items()):
        print(f"  {account}: {seq} events, head {head}")
    return EXIT_OK


def _write_lines(registry: Any, account: str | None, out: TextIO) -> int:
    count = 0
    for row in registry.export_audit(account):
        out.write(json.dumps(row, ensure_ascii=False, separators=(",", ":")) + "\n")
        count += 1
    return count


def cmd_audit_export(args: argparse.Namespace) -> int:
    to_stdout = args.output in (None, "-")
    out: TextIO
    if not to_stdout:
        try:  # before the database: a bad --output is refused before anything is read
            out = open(args.output, "w", encoding="utf-8")  # noqa: SIM115 (closed below)
        except OSError as err:
            from contracts.spec import SpecError

            raise SpecError("output", f"cannot write {args.output}: {err.strerror or type(err).__name__}") from None
    else:
        out = sys.stdout
    try:
        registry = _registry(args)
        try:
            count = _write_lines(registry, args.account, out)
        finally:
            registry.close()
    finally:
        if not to_stdout:
            out.close()
    if not to_stdout:
        print(f"exported {count} audit events to {args.output}", file=sys.stderr)
    return EXIT_OK


def add_audit_commands(subparsers: Any) -> None:
    """Add `audit verify` and `audit export` to the `lobstack` subcommands."""
    audit = subparsers.add_parser("audit", help="the audit trail: verify its hash chains, export it")
    audit_sub = audit.add_subparsers(dest="audit_command", required=True)

    def common(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--account", type=_account, help="only this account's chain (default: every account)")
        parser.add_argument("--database-url", help="registry database (default: DATABASE_URL, else the SQLite file)")

    verify = audit_sub.add_parser("verify", help="check every link; exit 1 and print the first broken one")
    common(verify)
    verify.set_defaults(func=cmd_audit_verify)

    export = audit_sub.add_parser("export", help="write the events as JSON lines, in chain order")
    common(export)
    export.add_argument("--output", help="write to this file (default: stdout)")
    export.set_defaults(func=cmd_audit_export)
