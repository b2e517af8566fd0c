"""The registry database: current agents and the audit trail (sqlmodel on SQLite or PostgreSQL)."""

from store.audit import BrokenLink, VerifyReport, verify_rows
from store.engine import default_database_url, make_engine
from store.records import AgentDataRecord, AgentRecord, AuditRecord, HealthRecord
from store.registry import AccountRegistry, Registry
from store.schema import SchemaOutOfDate, head_revision, schema_revision, upgrade_database, upgrade_schema
from store.tables import AgentDataRow, AgentHealthRow, AgentRow, AuditEvent
from store.tenancy import DbRoles, enable_row_level_security
from store.validation import validate_transition

__all__ = [
    "AccountRegistry",
    "AgentDataRecord",
    "AgentDataRow",
    "AgentHealthRow",
    "AgentRecord",
    "AgentRow",
    "AuditEvent",
    "AuditRecord",
    "BrokenLink",
    "DbRoles",
    "HealthRecord",
    "Registry",
    "SchemaOutOfDate",
    "VerifyReport",
    "default_database_url",
    "enable_row_level_security",
    "head_revision",
    "make_engine",
    "schema_revision",
    "upgrade_database",
    "upgrade_schema",
    "validate_transition",
    "verify_rows",
]
