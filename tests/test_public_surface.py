"""Every package names its public surface in `__all__`, and every name there exists: a name bound in the `__init__`
or a submodule of the package."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.test_layers import REPO, repo_modules


def _inits() -> list[Path]:
    return [p for p in repo_modules() if p.name == "__init__.py" and p.relative_to(REPO).parts[0] != "tests"]


def _declared(tree: ast.Module) -> list[str] | None:
    for node in tree.body:
        targets = (
            node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, ast.AnnAssign) else []
        )
        if isinstance(node, ast.Assign | ast.AnnAssign) and any(
            isinstance(t, ast.Name) and t.id == "__all__" for t in targets
        ):
            assert node.value is not None
            return [str(ast.literal_eval(e)) for e in getattr(node.value, "elts", [])]
    return None


def _bound(tree: ast.Module) -> set[str]:
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.ImportFrom | ast.Import):
            names |= {(a.asname or a.name).split(".")[0] for a in node.names}
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names |= {t.id for t in targets if isinstance(t, ast.Name)}
    return names


def test_every_package_declares_all_and_every_name_in_it_exists() -> None:
    missing, unknown = [], []
    for init in _inits():
        tree = ast.parse(init.read_text(encoding="utf-8"))
        declared = _declared(tree)
        where = str(init.relative_to(REPO))
        if declared is None:
            missing.append(where)
            continue
        submodules = {p.stem for p in init.parent.glob("*.py")} | {
            p.parent.name for p in init.parent.glob("*/__init__.py")
        }
        unknown += [f"{where}: {name}" for name in declared if name not in _bound(tree) | submodules]
    assert not missing, f"no __all__: {missing}"
    assert not unknown, f"names in __all__ that do not exist: {unknown}"
