"""`make bench`: scripts that print their figures (`python bench/<name>.py`); nothing here is imported."""

__all__: list[str] = []
