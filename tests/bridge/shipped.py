"""The bridge as it ships to an agent's VM: a virtual environment holding only the `bridge` extra's packages (at the
versions of deploy/docker/requirements.lock) and the source packages the bridge imports, nothing else of the repository.

What is copied is computed, not listed: the first-party packages reached from `bridge/` by its imports (followed into
each package it reaches), so a package the bridge starts to import travels with it, and a heavy one shows up as a
third-party import the extra does not declare (`undeclared_imports`).
"""

from __future__ import annotations

import ast
import hashlib
import shutil
import subprocess
import sys
import tomllib
import venv
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from importlib.metadata import packages_distributions
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parents[2]
PYPROJECT = REPO / "pyproject.toml"
LOCK = REPO / "deploy" / "docker" / "requirements.lock"
EXTRA = "bridge"
ENTRY = "bridge"


def extra_requirements() -> list[str]:
    """The `bridge` extra of pyproject.toml: the bridge's own third-party dependencies, as declared."""
    project = tomllib.loads(PYPROJECT.read_text())["project"]
    return list(project["optional-dependencies"][EXTRA])


def _is_first_party(name: str, root: Path) -> bool:
    return (root / name / "__init__.py").is_file() or (root / f"{name}.py").is_file()


def _type_checking_only(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _runtime_imports(nodes: Iterable[ast.AST]) -> Iterator[str]:
    """Top-level names of the absolute imports these nodes run (those under `if TYPE_CHECKING:` never run)."""
    for node in nodes:
        if isinstance(node, ast.If) and _type_checking_only(node.test):
            yield from _runtime_imports(node.orelse)
            continue
        if isinstance(node, ast.Import):
            yield from (alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module.split(".")[0]
        yield from _runtime_imports(ast.iter_child_nodes(node))


def _sources(package: str, root: Path) -> list[Path]:
    single = root / f"{package}.py"
    return [single] if single.is_file() else sorted((root / package).rglob("*.py"))


@dataclass(frozen=True)
class Closure:
    first_party: frozenset[str]  # top-level packages (or modules) of this repository to copy
    third_party: frozenset[str]  # top-level modules imported from installed distributions


def import_closure(entry: str = ENTRY, root: Path = REPO) -> Closure:
    """The first-party packages (those under `root`) `entry` reaches through its imports, and the third-party modules
    they import."""
    stdlib = sys.stdlib_module_names | {"__future__"}
    first, third = {entry}, set()
    pending = [entry]
    while pending:
        for path in _sources(pending.pop(), root):
            for name in _runtime_imports(ast.parse(path.read_text(), str(path)).body):
                if name in stdlib:
                    continue
                if not _is_first_party(name, root):
                    third.add(name)
                elif name not in first:
                    first.add(name)
                    pending.append(name)
    return Closure(frozenset(first), frozenset(third))


def undeclared_imports(closure: Closure, requirements: Iterable[str] | None = None) -> dict[str, list[str]]:
    """Third-party modules the shipped code imports that no distribution of the extra (or of `requirements`) provides,
    with what provides each of them here (empty when nothing installed does)."""
    reqs = extra_requirements() if requirements is None else requirements
    declared = {canonicalize_name(Requirement(req).name) for req in reqs}
    providers = packages_distributions()
    return {
        module: sorted(providers.get(module, []))
        for module in sorted(closure.third_party)
        if not declared & {canonicalize_name(dist) for dist in providers.get(module, [])}
    }


def cache_key() -> str:
    """What decides the installed packages: the declared extra, the lock and the interpreter."""
    digest = hashlib.sha256()
    for part in (PYPROJECT.read_bytes(), LOCK.read_bytes(), sys.version.encode()):
        digest.update(part)
    return digest.hexdigest()[:16]


def _site_packages(env: Path) -> Path:
    return env / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / "site-packages"


def build(parent: Path) -> Path:
    """Build the shipped environment under `parent` (reused when already built for the same key); its interpreter.

    The environment has no pip: this interpreter's pip installs into it (`--python`), from the package index with
    pip's cache, constrained to the lock. The first-party packages are copied in as they are on disk now.
    """
    env = parent / f"bridge-env-{cache_key()}"
    python = env / "bin" / "python"
    done = env / ".complete"
    if not done.exists():
        # From a virtual environment this still builds on the base interpreter, without the dev packages.
        venv.EnvBuilder(with_pip=False, clear=True).create(env)
        install = [sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet", "-c", str(LOCK)]
        result = subprocess.run([*install, *extra_requirements()], capture_output=True, timeout=600, check=False)
        if result.returncode != 0:
            raise RuntimeError(f"installing the bridge extra failed:\n{result.stderr.decode(errors='replace')}")
        done.touch()
    site = _site_packages(env)
    for package in sorted(import_closure().first_party):
        target = site / package
        shutil.rmtree(target, ignore_errors=True)
        if (REPO / package).is_dir():
            shutil.copytree(REPO / package, target, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(REPO / f"{package}.py", site / f"{package}.py")
    return python
