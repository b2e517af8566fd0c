"""What is tested is what ships: the locks agree with pyproject.toml, and `make` installs through them.

requirements.lock pins the image's runtime packages (the image installs it alone); requirements-dev.lock pins the
`dev` extra's packages beyond it. `make` (so CI) installs the project with both as constraints.
"""

from __future__ import annotations

import re
import tomllib

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from tests.deploy.support import DEPLOY, ROOT

DOCKER = DEPLOY / "docker"
LOCKS = ("requirements.lock", "requirements-dev.lock")
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
# Used through private hooks (workers/library_hooks.py): pinned to the minor series the hooks were checked on.
PRIVATE_HOOKS = ("temporalio", "hcloud", "python-digitalocean")


def _pins(lock: str) -> dict[str, Version]:
    pins: dict[str, Version] = {}
    for line in (DOCKER / lock).read_text().splitlines():
        if not line or line.startswith("#"):
            continue
        name, sep, version = line.partition("==")
        assert sep, f"{lock}: {line!r} is not pinned"
        assert canonicalize_name(name) not in pins, f"{lock}: {name} pinned twice"
        pins[canonicalize_name(name)] = Version(version)
    return pins


RUNTIME, DEV = (_pins(lock) for lock in LOCKS)


def test_the_locks_do_not_overlap() -> None:
    assert not set(RUNTIME) & set(DEV), "a package pinned in both locks"


@pytest.mark.parametrize(
    ("group", "requirements"),
    [
        ("dependencies", PROJECT["dependencies"]),
        # the bridge's own install on a VM (tests/bridge/shipped.py): the versions the image and the suite run
        ("bridge", PROJECT["optional-dependencies"]["bridge"]),
        ("dev", PROJECT["optional-dependencies"]["dev"]),
    ],
)
def test_every_dependency_is_locked_at_a_version_pyproject_allows(group: str, requirements: list[str]) -> None:
    pins = {**RUNTIME, **DEV}
    for raw in requirements:
        req = Requirement(raw)
        name = canonicalize_name(req.name)
        assert name in pins, f"{group}: {name} is in no lock (regenerate with deploy/docker/lock.py)"
        assert req.specifier.contains(pins[name], prereleases=True), f"{name}=={pins[name]} violates {req.specifier}"
        if group != "dev":
            assert name in RUNTIME, f"{name} ships ({group}): the image's lock must hold it"


@pytest.mark.parametrize("package", PRIVATE_HOOKS)
def test_libraries_used_through_private_hooks_are_pinned_to_their_minor_series(package: str) -> None:
    [raw] = [r for r in PROJECT["dependencies"] if canonicalize_name(Requirement(r).name) == package]
    spec = Requirement(raw).specifier
    locked = RUNTIME[package]
    assert spec.contains(locked)
    assert not spec.contains(Version(f"{locked.major}.{locked.minor + 1}.0"), prereleases=True), (
        f"{raw}: the next minor release of {package} may drop the private hook; pin <{locked.major}.{locked.minor + 1}"
    )


def test_make_installs_through_both_locks_and_reinstalls_when_they_change() -> None:
    makefile = (ROOT / "Makefile").read_text()
    [locks] = re.findall(r"^LOCKS := (.+)$", makefile, flags=re.M)
    assert locks.split() == [f"deploy/docker/{lock}" for lock in LOCKS]
    [prerequisites] = re.findall(r"^\$\(STAMP\): (.+)$", makefile, flags=re.M)
    assert prerequisites.split() == ["pyproject.toml", "$(LOCKS)"]
    installs = [line for line in makefile.splitlines() if "pip install" in line and "-e '.[dev]'" in line]
    assert installs and all("$(addprefix -c ,$(LOCKS))" in line for line in installs), installs
