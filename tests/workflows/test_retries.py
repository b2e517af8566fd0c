"""Retry policies live in one module, and failover decisions in the error classes, not in strings elsewhere."""

from __future__ import annotations

import ast
from pathlib import Path

from activities import errors
from activities.errors import error_class

ROOT = Path(__file__).resolve().parents[2]
RETRIES = ROOT / "workflows" / "retries.py"
SKIP = {".venv", ".git", "build", "node_modules"}


def _sources() -> list[Path]:
    return [
        path
        for path in sorted(ROOT.rglob("*.py"))
        if not SKIP & set(path.relative_to(ROOT).parts) and not path.name.startswith(".")
    ]


def _retry_policy_calls(path: Path) -> list[int]:
    tree = ast.parse(path.read_text(), filename=str(path))
    return [
        node.lineno
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and (
            (isinstance(node.func, ast.Name) and node.func.id == "RetryPolicy")
            or (isinstance(node.func, ast.Attribute) and node.func.attr == "RetryPolicy")
        )
    ]


def test_retry_policies_are_built_only_in_workflows_retries() -> None:
    elsewhere = {
        f"{path.relative_to(ROOT)}:{line}"
        for path in _sources()
        if path != RETRIES
        for line in _retry_policy_calls(path)
    }
    assert not elsewhere, f"RetryPolicy(...) outside workflows/retries.py: {sorted(elsewhere)}"
    assert _retry_policy_calls(RETRIES), "workflows/retries.py builds no policy: did this test lose its target?"


def test_no_workflow_names_an_error_class_in_a_string() -> None:
    """The workflow asks `error_class(type).fails_over`; it never lists class names of its own."""
    names = {cls.__name__ for cls in vars(errors).values() if isinstance(cls, type) and issubclass(cls, Exception)}
    found = {
        f"{path.relative_to(ROOT)}:{node.lineno} {node.value}"
        for path in sorted((ROOT / "workflows").rglob("*.py"))
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Constant) and node.value in names
    }
    assert not found, sorted(found)


def test_each_error_class_decides_failover_and_created_nothing() -> None:
    table = {
        name: (cls.retryable, cls.fails_over, cls.created_nothing)
        for name in [
            "ProviderUnavailable",
            "ProviderRateLimited",
            "ProviderCapacityError",
            "ProviderRejected",
            "VMNameTaken",
            "VMLeftBehind",
            "SecretsUnavailable",
            "AgentUnhealthy",
        ]
        if (cls := error_class(name)) is not None
    }
    assert table == {
        # retryable, fails over, created nothing
        "ProviderUnavailable": (True, True, False),  # a lost answer may still have made the VM
        "ProviderRateLimited": (True, True, False),
        "ProviderCapacityError": (False, True, True),
        "ProviderRejected": (False, False, True),
        "VMNameTaken": (True, True, True),  # the create activity looked for the agent's VM and found none live
        "VMLeftBehind": (True, False, False),
        "SecretsUnavailable": (True, False, False),
        "AgentUnhealthy": (False, False, False),
    }


def test_error_class_knows_only_our_classes() -> None:
    assert error_class("LobstackError") is errors.LobstackError
    for other in ["", "TimeoutError", "InvalidSpec", "Exception", "ApplicationError"]:
        assert error_class(other) is None
