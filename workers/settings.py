"""What a worker runs, from the environment, with embedded defaults for a laptop (Temporal's address and namespace:
`connection.settings.TemporalSettings`).

Production mode is `LOBSTACK_ENV=production`: there a worker must say which release it is (`LOBSTACK_BUILD_ID`) and
runs with Worker Versioning unless `LOBSTACK_VERSIONING=off` (docs/upgrades.md).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, get_args

from temporalio.common import WorkerDeploymentVersion
from temporalio.worker import WorkerDeploymentConfig

from activities.cloud.boot_time import vm_boot_times
from contracts.firewall import FirewallRules, rules_from_env

__all__ = [
    "DEFAULT_DEPLOYMENT_NAME",
    "Environment",
    "SettingsError",
    "Versioning",
    "WorkerSettings",
    "lobstack_home",
]

Environment = Literal["development", "production"]
DEFAULT_DEPLOYMENT_NAME = "lobstack"
# The server's limit on a build id and on a deployment name.
_MAX_NAME = 255


class SettingsError(ValueError):
    """A worker setting in the environment that cannot be used; the message names the variable and what is allowed."""


def lobstack_home() -> Path:
    return Path(os.environ.get("LOBSTACK_HOME", Path.home() / ".lobstack"))


@dataclass(frozen=True)
class Versioning:
    """Which Worker Deployment Version this process's workers are, and whether the server routes by it.

    Enabled, the server sends each workflow's tasks to workers of the version it is on: a pinned workflow (lifecycles,
    approvals) stays on the version it started on, so new code never replays an old run's history. Disabled with a
    build id, the workers still record it in every workflow task they complete, but any worker takes any task."""

    deployment_name: str = DEFAULT_DEPLOYMENT_NAME
    build_id: str = ""
    enabled: bool = False

    def __post_init__(self) -> None:
        if self.enabled and not self.build_id:
            raise SettingsError("LOBSTACK_BUILD_ID is required with Worker Versioning (LOBSTACK_VERSIONING=on)")

    @property
    def version(self) -> WorkerDeploymentVersion | None:
        return WorkerDeploymentVersion(self.deployment_name, self.build_id) if self.build_id else None

    def deployment_config(self) -> WorkerDeploymentConfig | None:
        """The SDK's option for every worker of the process; None leaves the SDK's own build id (a code hash)."""
        version = self.version
        if version is None:
            return None
        # No default behavior: with versioning on, the SDK then refuses to start a worker whose workflow does not
        # declare one (`@workflow.defn(versioning_behavior=...)`), so a new workflow cannot forget to choose.
        return WorkerDeploymentConfig(version=version, use_worker_versioning=self.enabled)

    @classmethod
    def from_env(cls, env: Mapping[str, str], environment: Environment) -> Versioning:
        deployment_name = env.get("LOBSTACK_DEPLOYMENT_NAME", DEFAULT_DEPLOYMENT_NAME).strip()
        if not deployment_name or "." in deployment_name or len(deployment_name) > _MAX_NAME:
            raise SettingsError(
                f"LOBSTACK_DEPLOYMENT_NAME: {deployment_name!r} is not allowed; must be 1 to {_MAX_NAME} characters "
                "without '.'"
            )
        build_id = env.get("LOBSTACK_BUILD_ID", "").strip()
        if len(build_id) > _MAX_NAME:
            raise SettingsError(f"LOBSTACK_BUILD_ID: must be at most {_MAX_NAME} characters, got {len(build_id)}")
        if environment == "production" and not build_id:
            raise SettingsError(
                "LOBSTACK_BUILD_ID is required when LOBSTACK_ENV=production: set it to this release's build id "
                "(the image tag or git commit)"
            )
        switch = env.get("LOBSTACK_VERSIONING", "").strip().lower()
        if switch not in ("", "on", "off"):
            raise SettingsError(f"LOBSTACK_VERSIONING: {switch!r} is not allowed; one of on, off")
        # On by default in production only: a laptop's worker restarts with new code and no one to route around it.
        enabled = switch == "on" or (switch == "" and environment == "production")
        return cls(deployment_name=deployment_name, build_id=build_id, enabled=enabled)


@dataclass(frozen=True)
class WorkerSettings:
    home: Path
    providers: tuple[str, ...] = ("local",)
    max_concurrent_activities: int = 64
    graceful_shutdown_s: float = 10.0
    # How long a workflow's next task waits for the worker that holds it in its cache before any worker takes it.
    sticky_timeout_s: float = 10.0
    gateway_url: str = ""
    environment: Environment = "development"
    versioning: Versioning = field(default_factory=Versioning)
    # Typical seconds from create to running per provider, when the first status look happens (LOBSTACK_VM_BOOT_S_*,
    # activities/cloud/boot_time.py). Empty here (look at once); from_env fills in the providers' defaults.
    vm_boot_s: Mapping[str, float] = field(default_factory=dict)
    # Every agent's firewall on the clouds (LOBSTACK_FIREWALL_*, contracts/firewall.py); development defaults.
    firewall_rules: FirewallRules = field(default_factory=lambda: rules_from_env({}))

    @property
    def local_vm_dir(self) -> Path:
        return self.home / "local-vms"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> WorkerSettings:
        """Read and check every setting; a bad one raises SettingsError naming its variable."""
        env = os.environ if env is None else env
        environment = env.get("LOBSTACK_ENV", "development").strip().lower() or "development"
        allowed: tuple[Environment, ...] = get_args(Environment)
        if environment not in allowed:
            raise SettingsError(f"LOBSTACK_ENV: {environment!r} is not allowed; one of {', '.join(allowed)}")
        checked: Environment = "production" if environment == "production" else "development"
        providers = tuple(p for p in env.get("LOBSTACK_PROVIDERS", "local").split(",") if p)
        versioning = Versioning.from_env(env, checked)
        try:
            vm_boot_s = vm_boot_times(env)
            firewall_rules = rules_from_env(env, production=checked == "production")
        except ValueError as err:  # FirewallSettingError is one too
            raise SettingsError(str(err)) from None
        return cls(
            home=lobstack_home(),
            providers=providers,
            gateway_url=env.get("LOBSTACK_GATEWAY_URL", ""),
            environment=checked,
            versioning=versioning,
            vm_boot_s=vm_boot_s,
            firewall_rules=firewall_rules,
        )
