"""Print requirements.lock: the runtime dependency closure of pyproject.toml at the versions installed in this venv.

.venv/bin/python deploy/docker/lock.py > deploy/docker/requirements.lock
"""

from __future__ import annotations

import tomllib
from importlib.metadata import distribution
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]


def closure() -> dict[str, str]:
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    pending = [(Requirement(d), "") for d in deps]
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


if __name__ == "__main__":
    print("# Runtime dependencies of the image, pinned: the versions the test suite ran against.")
    print("# Regenerate: .venv/bin/python deploy/docker/lock.py > deploy/docker/requirements.lock")
    for name, version in sorted(closure().items()):
        print(f"{name}=={version}")
