"""deploy/docker: the image is pinned, minimal and non-root, carries every package the project declares, and its
dependency lock satisfies pyproject.toml. (No Docker engine here: the Dockerfile is checked as text.)"""

from __future__ import annotations

import re
import tomllib

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from clients.cli import build_parser
from gateway.settings import DEFAULT_PORT as GATEWAY_PORT
from tests.deploy.support import DEPLOY, ROOT, manifests

DOCKER = DEPLOY / "docker"
DOCKERFILE = (DOCKER / "Dockerfile").read_text()
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def _instructions() -> list[tuple[str, str]]:
    text = re.sub(r"\\\n", " ", DOCKERFILE)
    return [
        (line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line.strip() else "")
        for line in text.splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]


def _final_stage() -> list[tuple[str, str]]:
    steps = _instructions()
    last_from = max(i for i, (op, _) in enumerate(steps) if op == "FROM")
    return steps[last_from:]


def test_base_image_is_pinned_to_an_exact_python_release() -> None:
    (arg,) = [v for op, v in _instructions() if op == "ARG" and v.startswith("PYTHON_IMAGE=")]
    image = arg.split("=", 1)[1]
    match = re.fullmatch(r"python:(\d+)\.(\d+)\.(\d+)-slim-\w+", image)
    assert match, f"{image} must name an exact release of a slim image"
    minimum = PROJECT["project"]["requires-python"].removeprefix(">=")
    assert f"{match[1]}.{match[2]}" == minimum
    assert all(
        v.strip() in {"${PYTHON_IMAGE} AS build", "${PYTHON_IMAGE}"} for op, v in _instructions() if op == "FROM"
    )


def test_final_stage_runs_as_non_root_the_lobstack_entry_point() -> None:
    final = _final_stage()
    users = [v for op, v in final if op == "USER"]
    assert users and users[-1].split(":")[0] not in {"0", "root"}
    assert int(users[-1].split(":")[0]) >= 10000
    (entrypoint,) = [v for op, v in final if op == "ENTRYPOINT"]
    assert entrypoint == '["lobstack"]' and "lobstack" in PROJECT["project"]["scripts"]
    # Minimal: no compiler or package installs in the final stage; the venv is copied from the build stage.
    assert not any(op == "RUN" and re.search(r"apt-get install|apk add|pip install", v) for op, v in final)
    assert ("COPY", "--from=build /opt/lobstack /opt/lobstack") in final


def test_every_project_package_is_copied_and_nothing_else_is_in_the_context() -> None:
    packages = PROJECT["tool"]["setuptools"]["packages"]["find"]["include"]
    top = {p.rstrip("*") for p in packages}
    copied = {v.split()[0] for op, v in _instructions() if op == "COPY" and not v.startswith("--from")}
    assert top <= copied
    allowed = {
        line[1:] for line in (DOCKER / "Dockerfile.dockerignore").read_text().splitlines() if line.startswith("!")
    }
    sources = {
        s
        for v in (v for op, v in _instructions() if op == "COPY" and not v.startswith("--from"))
        for s in v.split()[:-1]
    }
    assert sources == allowed


def test_exposed_ports_are_the_servers_defaults() -> None:
    (expose,) = [v for op, v in _instructions() if op == "EXPOSE"]
    codec_port = build_parser().parse_args(["codec-server"]).port
    assert {int(p) for p in expose.split()} == {GATEWAY_PORT, codec_port}


def test_lock_pins_every_runtime_dependency_within_pyproject() -> None:
    lines = [
        line for line in (DOCKER / "requirements.lock").read_text().splitlines() if line and not line.startswith("#")
    ]
    pins = {}
    for line in lines:
        name, sep, version = line.partition("==")
        assert sep and Version(version), f"{line!r} is not pinned"
        pins[canonicalize_name(name)] = version
    for dependency in PROJECT["project"]["dependencies"]:
        req = Requirement(dependency)
        name = canonicalize_name(req.name)
        assert name in pins, f"{name} is not in requirements.lock"
        assert req.specifier.contains(pins[name], prereleases=True), f"{name}=={pins[name]} violates {req.specifier}"
        for extra in req.extras:  # psycopg[binary] -> psycopg-binary
            assert canonicalize_name(f"{req.name}-{extra}") in pins


def test_manifests_run_this_image() -> None:
    image = f"lobstack-provisioner:{PROJECT['project']['version']}"
    used = {
        c["image"]
        for _, doc in manifests()
        for spec in [doc.get("spec", {}).get("template", {}).get("spec") or doc.get("template", {}).get("spec") or {}]
        for c in spec.get("containers", [])
        if "lobstack" in c["image"]
    }
    assert used == {image}
