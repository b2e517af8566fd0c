"""The registry database: current agents and the audit trail (sqlmodel on SQLite or PostgreSQL)."""

from store.engine import create_schema, default_database_url, make_engine
from store.records import AgentRecord, AuditRecord
from store.registry import Registry
from store.tables import AgentRow, AuditEvent
from store.validation import validate_transition

__all__ = [
    "AgentRecord",
    "AgentRow",
    "AuditEvent",
    "AuditRecord",
    "Registry",
    "create_schema",
    "default_database_url",
    "make_engine",
    "validate_transition",
]
