"""One module per revision of the registry schema, oldest first (store.migrations explains)."""

__all__: list[str] = []
