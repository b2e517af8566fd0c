"""A backend service that imports the client gets the Temporal SDK and the contracts, none of the worker's side."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
# The worker's side: the database layer, Vault's client, and every package of ours that pulls them in.
WORKER_SIDE = ("sqlmodel", "sqlalchemy", "hvac", "store", "activities", "workers", "workflows", "cloudsim", "gateway")
LOADED = "import json, sys; import {module}; print(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}})))"


def _top_level_modules_after(module: str) -> set[str]:
    # A fresh interpreter: this test process has imported everything already.
    out = subprocess.run(
        [sys.executable, "-c", LOADED.format(module=module)], cwd=REPO, capture_output=True, text=True, check=True
    )
    return set(json.loads(out.stdout))


def test_importing_the_client_loads_nothing_of_the_worker_side() -> None:
    loaded = _top_level_modules_after("clients.client")
    assert "temporalio" in loaded and "contracts" in loaded
    assert loaded.isdisjoint(WORKER_SIDE), sorted(loaded & set(WORKER_SIDE))


def test_importing_the_clients_package_is_as_light() -> None:
    loaded = _top_level_modules_after("clients")
    assert loaded.isdisjoint(WORKER_SIDE), sorted(loaded & set(WORKER_SIDE))


def test_the_contracts_load_nothing_but_the_standard_library() -> None:
    before = _top_level_modules_after("sys")
    loaded = _top_level_modules_after(
        "contracts.models, contracts.maintenance_models, contracts.spec, contracts.identifiers, contracts.regions, "
        "contracts.bootstrap, contracts.errors, contracts.health, contracts.queues, contracts.workflow_names, "
        "contracts.messages"
    )
    assert loaded - before - set(sys.stdlib_module_names) == {"contracts"}
