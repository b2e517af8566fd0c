"""Worker settings from the environment: production mode, the build id and Worker Versioning, each refusal naming
its variable; `lobstack worker` refuses them before it contacts anything."""

from __future__ import annotations

from pathlib import Path

import pytest

from activities.cloud.boot_time import DEFAULT_VM_BOOT_S
from tests.clients.cli_run import environment, run
from tests.deploy.support import K8S, yaml_documents
from workers.settings import SettingsError, Versioning, WorkerSettings

# What production needs besides the build id: its agents' firewall addresses (contracts/firewall.py).
FIREWALLS = {
    "LOBSTACK_FIREWALL_ORCHESTRATOR_CIDRS": "203.0.113.10/32",
    "LOBSTACK_FIREWALL_GATEWAY_CIDRS": "203.0.113.20/32",
    "LOBSTACK_FIREWALL_VAULT_CIDRS": "203.0.113.30/32",
}


def test_a_laptop_worker_runs_unversioned_with_the_sdk_build_id() -> None:
    settings = WorkerSettings.from_env({})
    assert settings.environment == "development"
    assert settings.versioning == Versioning() and settings.versioning.deployment_config() is None


def test_production_runs_versioned_under_the_deployment_and_build_id_given() -> None:
    settings = WorkerSettings.from_env(
        {
            "LOBSTACK_ENV": "production",
            "LOBSTACK_BUILD_ID": "2026.12.4-abc123",
            "LOBSTACK_DEPLOYMENT_NAME": "eu",
            **FIREWALLS,
        }
    )
    config = settings.versioning.deployment_config()
    assert config is not None and config.use_worker_versioning
    assert (config.version.deployment_name, config.version.build_id) == ("eu", "2026.12.4-abc123")


def test_a_build_id_without_versioning_is_recorded_but_does_not_route() -> None:
    settings = WorkerSettings.from_env({"LOBSTACK_BUILD_ID": "b1"})
    config = settings.versioning.deployment_config()
    assert config is not None and not config.use_worker_versioning and config.version.build_id == "b1"
    production_off = WorkerSettings.from_env(
        {"LOBSTACK_ENV": "production", "LOBSTACK_BUILD_ID": "b1", "LOBSTACK_VERSIONING": "off", **FIREWALLS}
    )
    assert not production_off.versioning.enabled


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"LOBSTACK_ENV": "production"}, "LOBSTACK_BUILD_ID is required when LOBSTACK_ENV=production"),
        ({"LOBSTACK_ENV": "production", "LOBSTACK_BUILD_ID": "  "}, "LOBSTACK_BUILD_ID is required"),
        ({"LOBSTACK_VERSIONING": "on"}, "LOBSTACK_BUILD_ID is required with Worker Versioning (LOBSTACK_VERSIONING"),
        ({"LOBSTACK_ENV": "prod"}, "LOBSTACK_ENV: 'prod' is not allowed; one of development, production"),
        ({"LOBSTACK_VERSIONING": "yes"}, "LOBSTACK_VERSIONING: 'yes' is not allowed; one of on, off"),
        ({"LOBSTACK_DEPLOYMENT_NAME": "eu.west"}, "LOBSTACK_DEPLOYMENT_NAME: 'eu.west' is not allowed"),
        ({"LOBSTACK_BUILD_ID": "x" * 256}, "LOBSTACK_BUILD_ID: must be at most 255 characters"),
        ({"LOBSTACK_VM_BOOT_S_HETZNER": "soon"}, "LOBSTACK_VM_BOOT_S_HETZNER: 'soon' is not a number of seconds"),
        ({"LOBSTACK_VM_BOOT_S_VULTR": "-1"}, "LOBSTACK_VM_BOOT_S_VULTR: '-1' is not allowed; seconds from 0 to 300"),
        ({"LOBSTACK_VM_BOOT_S_DIGITALOCEAN": "nan"}, "LOBSTACK_VM_BOOT_S_DIGITALOCEAN: 'nan' is not allowed"),
        (
            {"LOBSTACK_ENV": "production", "LOBSTACK_BUILD_ID": "b1"},
            "LOBSTACK_FIREWALL_ORCHESTRATOR_CIDRS is required when LOBSTACK_ENV=production",
        ),
        (
            {"LOBSTACK_FIREWALL_GATEWAY_CIDRS": "10.0.0.1/8"},
            "LOBSTACK_FIREWALL_GATEWAY_CIDRS: '10.0.0.1/8' is not a CIDR block",
        ),
    ],
)
def test_a_setting_that_cannot_be_used_is_refused_naming_its_variable(env: dict[str, str], named: str) -> None:
    with pytest.raises(SettingsError) as refused:
        WorkerSettings.from_env(env)
    assert named in str(refused.value)


def test_typical_boot_times_default_per_provider_and_each_can_be_set() -> None:
    assert WorkerSettings.from_env({}).vm_boot_s == DEFAULT_VM_BOOT_S
    assert WorkerSettings(home=Path("/nowhere")).vm_boot_s == {}  # built in code: look at once unless told
    settings = WorkerSettings.from_env({"LOBSTACK_VM_BOOT_S_HETZNER": "12.5", "LOBSTACK_VM_BOOT_S_VULTR": " 0 "})
    assert settings.vm_boot_s == {**DEFAULT_VM_BOOT_S, "hetzner": 12.5, "vultr": 0.0}


def test_lobstack_worker_in_production_refuses_to_start_without_a_build_id() -> None:
    # No Temporal, Vault or database is reachable here: the refusal comes before any of them is contacted.
    done = run("worker", env=environment({"LOBSTACK_ENV": "production", "LOBSTACK_BUILD_ID": ""}))
    assert done.code == 2, done
    assert done.err.count("\n") == 1 and done.err.startswith("lobstack: error: LOBSTACK_BUILD_ID is required"), done
    assert "Traceback" not in done.err and done.out == "", done


def test_lobstack_worker_refuses_a_firewall_address_that_is_not_a_cidr_block() -> None:
    done = run("worker", env=environment({"LOBSTACK_FIREWALL_VAULT_CIDRS": "vault.internal"}))
    assert done.code == 2, done
    assert done.err.startswith("lobstack: error: LOBSTACK_FIREWALL_VAULT_CIDRS: 'vault.internal' is not a CIDR"), done
    assert "Traceback" not in done.err and done.out == "", done


def test_the_kubernetes_worker_runs_in_production_mode_with_its_image_tag_as_build_id() -> None:
    (deployment,) = [d for d in yaml_documents(K8S / "lobstack" / "worker.yaml") if d["kind"] == "Deployment"]
    (container,) = [c for c in deployment["spec"]["template"]["spec"]["containers"] if c["name"] == "worker"]
    env = {item["name"]: item["value"] for item in container["env"] if "value" in item}
    settings = WorkerSettings.from_env(env)
    assert settings.environment == "production" and settings.versioning.enabled
    assert settings.firewall_rules.inbound[0].cidrs == ("203.0.113.10/32", "203.0.113.20/32")
    assert settings.versioning.build_id == container["image"].rsplit(":", 1)[1]
