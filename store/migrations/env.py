"""Alembic's entry point: runs the migrations on the connection store.schema opened (and locked) for it."""

from __future__ import annotations

from alembic import context
from sqlmodel import SQLModel

import store.tables  # noqa: F401  (registers the models on SQLModel.metadata, the target of autogenerate)

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run the registry's migrations with `lobstack db upgrade` (store.schema), not the alembic CLI")

# SQLite alters a table by copying it: autogenerate writes such changes as batch operations there.
context.configure(
    connection=connection,
    target_metadata=SQLModel.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
)
# The caller's transaction (which holds the schema lock) is the migrations' transaction: all of them or none.
with context.begin_transaction():
    context.run_migrations()
