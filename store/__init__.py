"""The registry database: current agents and the audit trail (sqlmodel on SQLite or PostgreSQL)."""

from store.engine import create_schema, default_database_url, make_engine
from store.records import AgentDataRecord, AgentRecord, AuditRecord, HealthRecord
from store.registry import Registry
from store.tables import AgentDataRow, AgentHealthRow, AgentRow, AuditEvent
from store.validation import validate_transition

__all__ = [
    "AgentDataRecord",
    "AgentDataRow",
    "AgentHealthRow",
    "AgentRecord",
    "AgentRow",
    "AuditEvent",
    "AuditRecord",
    "HealthRecord",
    "Registry",
    "create_schema",
    "default_database_url",
    "make_engine",
    "validate_transition",
]
