"""Activities of the maintenance workflows: key rotation, orphan sweep, fleet health, and agent data cleanup.

`maintenance_activities` builds them from the worker's clients; the worker registers the list on its workflow queue.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from temporalio.client import Client

from activities.cloud.base import CloudProvider
from activities.maintenance.data import AgentDataActivities
from activities.maintenance.fleet import FleetActivities, decide
from activities.maintenance.pool_sweep import PoolSweepActivities
from activities.maintenance.rotation import RotationActivities
from activities.maintenance.sweep import SweepActivities
from activities.secrets.agent_vault import AgentVault
from activities.secrets.pool_vault import PoolVault
from store import Registry

__all__ = [
    "AgentDataActivities",
    "FleetActivities",
    "PoolSweepActivities",
    "RotationActivities",
    "SweepActivities",
    "decide",
    "maintenance_activities",
]


def maintenance_activities(
    *, vault: AgentVault, registry: Registry, providers: Mapping[str, CloudProvider], temporal: Client
) -> list[Callable[..., Any]]:
    rotation = RotationActivities(vault, registry)
    sweep = SweepActivities(vault=vault, registry=registry, providers=providers, temporal=temporal)
    fleet = FleetActivities(registry=registry, temporal=temporal)
    data = AgentDataActivities(registry)
    pools = PoolSweepActivities(
        pools=PoolVault(vault.settings), registry=registry, providers=providers, temporal=temporal
    )
    return [
        rotation.list_rotation_targets,
        rotation.rotate_keys,
        sweep.find_orphans,
        sweep.remove_orphans,
        pools.sweep_pools,
        fleet.check_fleet,
        data.delete_agent_data,
    ]
