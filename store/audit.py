"""Tamper-evident audit trail: every account's events form one SHA-256 hash chain.

Each event carries `seq` (1, 2, 3... per account), `prev_hash` (the `hash` of the account's previous event, or
`GENESIS_HASH` for the first) and `hash` = SHA-256 over a canonical JSON of its own fields and `prev_hash`
(`event_hash`). Changing, removing or reordering a stored event breaks the link at that event or the next one, which
`verify_rows` reports. What a chain alone cannot show is the loss of an account's *newest* events (nothing links to
them yet): keep the heads `VerifyReport.heads` prints somewhere the database cannot write to anchor them.

Appending (`append_event`) runs inside the caller's transaction, after the chain is locked for the account:
PostgreSQL takes `pg_advisory_xact_lock(namespace, hashtext(account_id))`, SQLite's write transaction is already
exclusive (the caller opens it with BEGIN IMMEDIATE). The unique (account_id, seq) index is the backstop: a fork can
never be stored, only refused. A duplicate `event_key` inserts nothing and so never advances the chain.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, RowMapping, Select, select, text

from store.tables import AUDIT_EVENTS

__all__ = [
    "CHAIN_FIELDS",
    "GENESIS_HASH",
    "BrokenLink",
    "VerifyReport",
    "append_event",
    "backfill_chain",
    "chain_query",
    "event_hash",
    "export_row",
    "iter_rows",
    "verify_rows",
]

_EVENTS = AUDIT_EVENTS
# A stored event: a database row, or a dict of the same fields (export_row's output, read back from a file).
EventRow = Mapping[str, Any] | RowMapping

GENESIS_HASH = "0" * 64
# What the hash covers, besides prev_hash. `id` is left out: it is the database's, not the event's.
CHAIN_FIELDS = ("account_id", "seq", "event_key", "at", "agent_id", "action", "state", "actor", "reason", "details")
# First key of the two-key advisory lock (its key space is apart from the one-bigint schema lock's).
_CHAIN_LOCK_NAMESPACE = 0x10B5


def _canonical_at(value: datetime | str) -> str:
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    if moment.tzinfo is None:
        raise ValueError("audit event time must be timezone-aware")
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def event_hash(event: EventRow, prev_hash: str) -> str:
    """SHA-256 (hex) of the event's CHAIN_FIELDS and `prev_hash` as sorted, compact, UTF-8 JSON."""
    body = {name: event[name] for name in CHAIN_FIELDS}
    body["at"] = _canonical_at(body["at"])
    body["details"] = dict(body["details"] or {})
    body["prev_hash"] = prev_hash
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def append_event(conn: Connection, insert: Any, values: Mapping[str, Any]) -> int | None:
    """Insert one event at the head of its account's chain; its id, or None when `event_key` exists already.

    `values` holds every column but id, seq, prev_hash and hash. On SQLite the caller must hold the write lock.
    """
    account_id = values["account_id"]
    if conn.dialect.name == "postgresql":
        # Held to the end of the transaction: the next writer of this account reads the head we are about to write.
        conn.execute(
            text("SELECT pg_advisory_xact_lock(:ns, hashtext(:account))"),
            {"ns": _CHAIN_LOCK_NAMESPACE, "account": account_id},
        )
    head = conn.execute(
        select(_EVENTS.c.seq, _EVENTS.c.hash)
        .where(_EVENTS.c.account_id == account_id)
        .order_by(_EVENTS.c.seq.desc())
        .limit(1)
    ).first()
    seq, prev_hash = (1, GENESIS_HASH) if head is None else (head.seq + 1, head.hash)
    row = {**values, "seq": seq, "prev_hash": prev_hash}
    row["hash"] = event_hash(row, prev_hash)
    stmt = (
        insert(_EVENTS)
        .values(row)
        # The unique key decides, not a prior SELECT: a duplicate (a retried activity) writes nothing.
        .on_conflict_do_nothing(index_elements=[_EVENTS.c.event_key])
        .returning(_EVENTS.c.id)
    )
    found: int | None = conn.execute(stmt).scalar_one_or_none()
    return found


def export_row(row: EventRow) -> dict[str, Any]:
    """One event as a JSON-ready dict: everything needed to verify it again offline (see verify_rows)."""
    return {
        "id": row["id"],
        "account_id": row["account_id"],
        "seq": row["seq"],
        "event_key": row["event_key"],
        "at": _canonical_at(row["at"]),
        "agent_id": row["agent_id"],
        "action": row["action"],
        "state": row["state"],
        "actor": row["actor"],
        "reason": row["reason"],
        "details": dict(row["details"] or {}),
        "prev_hash": row["prev_hash"],
        "hash": row["hash"],
    }


@dataclass(frozen=True)
class BrokenLink:
    """The first event whose link does not hold, and what was expected there."""

    account_id: str
    seq: int
    event_id: int | None
    problem: str
    expected: str
    found: str

    def describe(self) -> str:
        where = f"account {self.account_id!r} seq {self.seq}" + (
            f" (event id {self.event_id})" if self.event_id is not None else ""
        )
        return f"{where}: {self.problem}; expected {self.expected}, found {self.found}"


@dataclass(frozen=True)
class VerifyReport:
    """ok, how much was checked, and each account's head (seq, hash) to anchor outside the database."""

    ok: bool
    accounts: int
    events: int
    broken: BrokenLink | None = None
    heads: dict[str, tuple[int, str]] = field(default_factory=dict)

    def describe(self) -> str:
        if self.broken is not None:
            return f"audit chain broken at {self.broken.describe()}"
        return f"audit chain ok: {self.events} events in {self.accounts} accounts"


def verify_rows(rows: Iterable[EventRow]) -> VerifyReport:
    """Check rows ordered by (account_id, seq): stops at the first broken link.

    Takes database rows or export_row dicts alike, so an exported trail can be verified away from the database.
    """
    heads: dict[str, tuple[int, str]] = {}
    events = 0
    account: str | None = None
    prev_hash, expected_seq = GENESIS_HASH, 1
    for row in rows:
        if row["account_id"] != account:
            prev_hash, expected_seq = GENESIS_HASH, 1
        account = str(row["account_id"])
        seq = int(row["seq"])
        problem: tuple[str, str, str] | None = None
        recomputed = event_hash(row, prev_hash)
        if row["prev_hash"] != prev_hash:
            gap = f"; seq {expected_seq}..{seq - 1} missing" if seq > expected_seq else ""
            problem = (f"prev_hash is not the previous event's hash{gap}", prev_hash, str(row["prev_hash"]))
        elif seq != expected_seq:
            problem = ("seq out of order", f"seq {expected_seq}", f"seq {seq}")
        elif row["hash"] != recomputed:
            problem = ("hash does not match the event's content", recomputed, str(row["hash"]))
        if problem is not None:
            link = BrokenLink(account, seq, row.get("id"), *problem)
            return VerifyReport(
                ok=False, accounts=len(heads | {account: (0, "")}), events=events, broken=link, heads=heads
            )
        events += 1
        prev_hash, expected_seq = recomputed, seq + 1
        heads[account] = (seq, recomputed)
    return VerifyReport(ok=True, accounts=len(heads), events=events, heads=heads)


def backfill_chain(conn: Connection) -> int:
    """Chain events stored before the chain columns existed, per account in id order; returns how many.

    Runs once, when `lobstack db upgrade` adopts a registry made before the chain (store.migrations.legacy), before
    the append-only trigger exists. It attests those events as they are at upgrade time, not how they were written.
    """
    rows = conn.execute(select(_EVENTS).order_by(_EVENTS.c.account_id, _EVENTS.c.id)).mappings().all()
    updates: list[dict[str, Any]] = []
    account: str | None = None
    prev_hash, seq = GENESIS_HASH, 0
    for row in rows:
        if row["account_id"] != account:
            account, prev_hash, seq = row["account_id"], GENESIS_HASH, 0
        seq += 1
        chained = {**row, "seq": seq, "prev_hash": prev_hash}
        chained["hash"] = event_hash(chained, prev_hash)
        updates.append({"b_id": row["id"], "seq": seq, "prev_hash": prev_hash, "hash": chained["hash"]})
        prev_hash = chained["hash"]
    if updates:
        conn.execute(
            text("UPDATE audit_events SET seq = :seq, prev_hash = :prev_hash, hash = :hash WHERE id = :b_id"), updates
        )
    return len(updates)


def chain_query(account_id: str | None = None) -> Select[Any]:
    """Events in chain order: by account, then seq."""
    query = select(_EVENTS).order_by(_EVENTS.c.account_id, _EVENTS.c.seq, _EVENTS.c.id)
    return query if account_id is None else query.where(_EVENTS.c.account_id == account_id)


def iter_rows(conn: Connection, query: Select[Any], batch: int = 1000) -> Iterator[RowMapping]:
    """The query's rows fetched in batches (a server-side cursor on PostgreSQL), never the whole trail at once."""
    yield from conn.execution_options(yield_per=batch).execute(query).mappings()
