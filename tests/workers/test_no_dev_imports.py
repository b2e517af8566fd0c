"""The production worker never imports the development stack or the cloud simulator: `workers/` ships and runs
without them. Read from the source with `ast`, so an import inside a function counts too."""

from __future__ import annotations

import ast
from pathlib import Path

WORKERS = Path(__file__).resolve().parents[2] / "workers"
DEVELOPMENT_ONLY = {"cloudsim", "devstack"}


def imported_packages(source: Path) -> set[str]:
    """The top-level package of every absolute import in `source`."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source.read_text(), filename=str(source))):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found


def test_no_module_under_workers_imports_cloudsim_or_devstack() -> None:
    modules = sorted(WORKERS.rglob("*.py"))
    assert len(modules) > 5, modules
    offenders = {
        str(m.relative_to(WORKERS.parent)): sorted(imported_packages(m) & DEVELOPMENT_ONLY)
        for m in modules
        if imported_packages(m) & DEVELOPMENT_ONLY
    }
    assert offenders == {}


def test_the_check_sees_imports_at_any_depth(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from devstack.stack import dev_stack\n    import cloudsim.testing\n")
    assert imported_packages(module) >= DEVELOPMENT_ONLY
