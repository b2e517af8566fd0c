# kubernetes-validate ships no types: what tests/deploy uses.
from typing import Any

def validate(data: Any, desired_version: str, strict: bool = ...) -> str: ...
