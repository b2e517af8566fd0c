"""Print a lock: the dependency closure of pyproject.toml at the versions installed in this venv.

.venv/bin/python deploy/docker/lock.py > deploy/docker/requirements.lock               # the image's runtime packages
.venv/bin/python deploy/docker/lock.py --extra dev > deploy/docker/requirements-dev.lock  # tests and tools, beyond it

The image installs requirements.lock alone; `make` installs the project with both as constraints, so the suite runs
against exactly what ships.
"""

from __future__ import annotations

import argparse
import tomllib
from importlib.metadata import distribution
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]


def closure(requirements: list[str]) -> dict[str, str]:
    pending = [(Requirement(d), "") for d in requirements]
    found: dict[str, str] = {}
    extras_done: dict[str, set[str]] = {}
    while pending:
        req, extra = pending.pop()
        if req.marker and not req.marker.evaluate({"extra": extra}):
            continue
        name = canonicalize_name(req.name)
        dist = distribution(req.name)
        # Walk a package's plain requirements once, and those of each extra asked for once.
        todo = ({""} | set(req.extras)) - extras_done.setdefault(name, set())
        found[name] = dist.version
        extras_done[name] |= todo
        pending.extend((Requirement(raw), e) for raw in dist.requires or [] for e in todo)
    return found


def lock(extra: str = "") -> dict[str, str]:
    """The runtime closure, or with `extra` the closure of that extra's packages that the runtime one lacks."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    runtime = closure(project["dependencies"])
    if not extra:
        return runtime
    both = closure(project["dependencies"] + project["optional-dependencies"][extra])
    return {name: version for name, version in both.items() if name not in runtime}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--extra", default="", help="lock this optional-dependencies extra (beyond the runtime lock)")
    args = parser.parse_args()
    if args.extra:
        print(
            f"# The `{args.extra}` extra's packages beyond requirements.lock, pinned: the versions the suite ran with."
        )
        print("# Constraints for `make` (never installed in the image). Regenerate:")
        print(f"# .venv/bin/python deploy/docker/lock.py --extra {args.extra} > deploy/docker/requirements-dev.lock")
    else:
        print("# Runtime dependencies of the image, pinned: the versions the test suite ran against.")
        print("# Regenerate: .venv/bin/python deploy/docker/lock.py > deploy/docker/requirements.lock")
    for name, version in sorted(lock(args.extra).items()):
        print(f"{name}=={version}")
