"""Alembic's script directory for the registry (env.py, versions/); run it through store.schema, never by hand.

`versions/` holds one module per schema revision, oldest first: 0001 is the baseline (the schema create_schema made
before migrations existed). A later revision never edits an earlier one; it adds a file, and extends the upgrade test
(tests/store/test_migrations.py) with the data it must carry over.
"""

__all__: list[str] = []
