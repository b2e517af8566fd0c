"""The layer order of the code (README, "How the code is laid out"), enforced: every import of every module, those
inside functions included, goes to its own unit or to a lower layer.

A unit is a package, or a part of one given its own row (the `lobstack` command line sits above the client library it
shares `clients/` with). Units on the same layer are independent of each other: the worker and the gateway are
separate services and neither imports the other.
"""

from __future__ import annotations

import ast
import sys
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Unit:
    layer: int
    name: str
    prefixes: tuple[str, ...]


UNITS = (
    Unit(0, "contracts", ("contracts",)),
    Unit(1, "bridge", ("bridge",)),
    Unit(2, "store", ("store",)),
    Unit(3, "activities", ("activities",)),
    Unit(4, "workflows", ("workflows",)),
    Unit(5, "connection", ("connection",)),
    Unit(6, "workers", ("workers",)),
    Unit(6, "gateway", ("gateway",)),
    Unit(7, "client", ("clients",)),
    Unit(8, "cloudsim", ("cloudsim",)),
    Unit(9, "devstack", ("devstack",)),
    Unit(
        10,
        "cli",
        (
            "clients.cli",
            "clients.cli_common",
            "clients.demo",
            "clients.ops_cli",
            "clients.audit_cli",
            "clients.db_cli",
            "clients.webhooks_cli",
            "clients.approvers_cli",
            "clients.limits_cli",
            "clients.pool_cli",
            "clients.catalog_cli",
        ),
    ),
    Unit(11, "chaos", ("chaos",)),
    Unit(11, "bench", ("bench",)),
    Unit(11, "docs", ("docs",)),
    Unit(11, "deploy", ("deploy",)),
    Unit(12, "tests", ("tests",)),
)
# What the bridge may use besides the standard library and contracts: it ships alone to the agent's VM.
BRIDGE_THIRD_PARTY = {"hvac", "requests"}
OURS = {u.prefixes[0].split(".")[0] for u in UNITS}


def unit_of(module: str) -> Unit | None:
    best: tuple[int, Unit] | None = None
    for unit in UNITS:
        for prefix in unit.prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and (best is None or len(prefix) > best[0]):
                best = (len(prefix), unit)
    return None if best is None else best[1]


@dataclass(frozen=True)
class Import:
    path: Path
    line: int
    source: str  # the importing module
    target: str  # the imported module


def module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path) -> list[Import]:
    source = module_name(path)
    package = source if path.name == "__init__.py" else source.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [Import(path, node.lineno, source, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolved against the importing module's package
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                target = f"{base}.{node.module}" if node.module else base
            else:
                target = node.module or ""
            found.append(Import(path, node.lineno, source, target))
    return found


def repo_modules() -> list[Path]:
    # Top-level folders of the repository only: never the virtualenv, caches or build output.
    tops = [d for d in REPO.iterdir() if d.is_dir() and not d.name.startswith(".") and d.name not in {"build", "dist"}]
    return sorted(p for top in tops if not top.name.endswith(".egg-info") for p in top.rglob("*.py"))


ALL_IMPORTS = [i for path in repo_modules() for i in imports_of(path)]


def _where(i: Import) -> str:
    return f"{i.path.relative_to(REPO)}:{i.line}"


def test_every_module_belongs_to_a_unit_of_the_layer_table() -> None:
    unplaced = sorted({module_name(p) for p in repo_modules() if unit_of(module_name(p)) is None})
    assert not unplaced, f"add these to UNITS (and to the README's layer table): {unplaced}"


def test_no_import_goes_up_a_layer_or_sideways_to_a_sibling() -> None:
    wrong = []
    for i in ALL_IMPORTS:
        if i.target.split(".")[0] not in OURS:
            continue
        src, dst = unit_of(i.source), unit_of(i.target)
        assert src is not None and dst is not None, _where(i)
        if src.name != dst.name and dst.layer >= src.layer:
            how = "goes up a layer" if dst.layer > src.layer else "reaches a sibling on its own layer"
            wrong.append(
                f"{_where(i)}: {i.source} ({src.name}, layer {src.layer}) imports {i.target} "
                f"({dst.name}, layer {dst.layer}): {how}"
            )
    assert not wrong, "imports against the layer order:\n" + "\n".join(wrong)


def test_contracts_import_only_the_standard_library() -> None:
    wrong = [
        f"{_where(i)}: {i.target}"
        for i in ALL_IMPORTS
        if i.source.split(".")[0] == "contracts"
        and i.target.split(".")[0] not in sys.stdlib_module_names | {"contracts"}
    ]
    assert not wrong, "contracts must stay standard-library only:\n" + "\n".join(wrong)


def test_the_bridge_imports_only_contracts_hvac_requests_and_the_standard_library() -> None:
    allowed = sys.stdlib_module_names | {"bridge", "contracts"} | BRIDGE_THIRD_PARTY
    wrong = [
        f"{_where(i)}: {i.target}"
        for i in ALL_IMPORTS
        if i.source.split(".")[0] == "bridge" and i.target.split(".")[0] not in allowed
    ]
    assert not wrong, "the bridge ships alone to the VM:\n" + "\n".join(wrong)


def test_the_walk_sees_imports_inside_functions() -> None:
    # The check is only as good as its walk: a lazy import in a function body must be seen too.
    lazy = [i for i in ALL_IMPORTS if i.source == "connection.codec" and i.target == "activities.secrets"]
    assert lazy, "the import inside Keyring.from_env was not found"
