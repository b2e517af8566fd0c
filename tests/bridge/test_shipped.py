"""The bridge ships alone: its environment holds the `bridge` extra and its own source packages, and it runs there."""

from __future__ import annotations

import json
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path

from activities.secrets import AgentVault
from tests.bridge import shipped
from tests.bridge.conftest import BridgeProcess

# What the orchestrator side runs on; none of it may be needed on an agent's VM.
HEAVY = ("temporalio", "sqlmodel", "sqlalchemy", "httpx", "pydantic")

# Run by the shipped interpreter: every bridge module imports, from that environment; the heavy packages do not.
PROBE = """
import importlib, json, pkgutil, sys
import bridge
modules = [m.name for m in pkgutil.walk_packages(bridge.__path__, "bridge.") if not m.name.endswith("__main__")]
for name in modules:
    importlib.import_module(name)
missing = []
for name in sys.argv[1:]:
    try:
        importlib.import_module(name)
    except ModuleNotFoundError:
        missing.append(name)
print(json.dumps({"bridge": bridge.__file__, "modules": modules, "missing": missing, "prefix": sys.prefix}))
"""


def test_every_third_party_module_the_bridge_imports_is_declared_in_its_extra() -> None:
    closure = shipped.import_closure()
    assert "bridge" in closure.first_party
    assert shipped.undeclared_imports(closure) == {}


def test_the_closure_follows_first_party_imports_and_names_a_heavy_one_the_extra_lacks(tmp_path: Path) -> None:
    """The check above would catch the bridge reaching a heavy package through a first-party one: here a stand-in
    tree where bridge -> contracts -> httpx, and a package imported only for type checking stays out."""
    files = {
        "bridge/__init__.py": "import json\nfrom contracts import names\nimport requests\n",
        "bridge/agent.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from activities import x\n",
        "contracts/__init__.py": "",
        "contracts/names.py": "def f() -> None:\n    import httpx\n",
        "activities/__init__.py": "import temporalio\n",
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    closure = shipped.import_closure(root=tmp_path)
    assert closure == shipped.Closure(frozenset({"bridge", "contracts"}), frozenset({"requests", "httpx"}))
    assert shipped.undeclared_imports(closure, ["requests>=2"]) == {"httpx": ["httpx"]}


def test_the_shipped_environment_lacks_the_orchestrators_packages_and_imports_every_bridge_module(
    bridge_python: Path, tmp_path: Path
) -> None:
    done = subprocess.run(
        [bridge_python, "-I", "-c", PROBE, *HEAVY], cwd=tmp_path, capture_output=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    found = json.loads(done.stdout)
    assert found["missing"] == list(HEAVY)
    # The bridge comes from the shipped environment, not from the repository.
    assert Path(found["bridge"]).is_relative_to(found["prefix"])
    assert found["prefix"] == str(bridge_python.parent.parent)
    assert "bridge.agent" in found["modules"] and "bridge.introduction" in found["modules"]


def test_the_bridge_introduces_itself_and_turns_healthy_from_its_shipped_environment(
    bridge_vault: AgentVault,
    agent_id: str,
    tmp_path: Path,
    bridge_python: Path,
    start_bridge: Callable[..., BridgeProcess],
) -> None:
    bridge_vault.mint(agent_id)
    config = bridge_vault.issue_bootstrap(agent_id, address_file=str(tmp_path / "bridge.addr"))
    proc = start_bridge(config)
    code, body = proc.wait_status("healthy")
    assert (code, body["secrets_loaded"]) == (200, 1)
    argv = Path(f"/proc/{proc.popen.pid}/cmdline").read_bytes().split(b"\0")
    assert argv[:4] == [str(bridge_python).encode(), b"-I", b"-u", b"-m"]
    assert proc.stop(signal.SIGTERM) == 0
    bridge_vault.destroy(agent_id)
