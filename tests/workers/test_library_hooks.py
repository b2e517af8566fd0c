"""The worker refuses to start, in one line with status 2, when a dependency lacks a private hook it uses.

Each case removes one hook in a real `lobstack worker` process before the CLI runs, as a release outside the pinned
series would; the installed versions (the pinned ones) must pass the same check.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.clients.cli_run import environment
from workers.library_hooks import check, missing

# Python run before `lobstack worker`: each takes away what a newer release of that library might.
REMOVALS = {
    "temporalio": "import temporalio.worker as w; del w.Worker._set_default_workflow_logic_flag",
    "hcloud": (
        "import hcloud._client as c; init = c.ClientBase.__init__\n"
        "def without(self, *a, **k):\n"
        "    init(self, *a, **k); del self._retry_max_retries\n"
        "c.ClientBase.__init__ = without"
    ),
    "python-digitalocean": "import digitalocean.baseapi as b; del b.BaseAPI._BaseAPI__perform_request",
}
GONE = {
    "temporalio": "Worker._set_default_workflow_logic_flag",
    "hcloud": "Client._client._retry_max_retries",
    "python-digitalocean": "BaseAPI.__perform_request",
}
PINS = {"temporalio": ">=1.35", "hcloud": ">=2.27", "python-digitalocean": ">=1.17"}


def test_the_installed_libraries_have_every_hook() -> None:
    assert missing() == {}
    check()


@pytest.mark.parametrize("package", sorted(REMOVALS))
def test_a_worker_without_a_hook_is_refused_in_one_line(package: str) -> None:
    script = f"{REMOVALS[package]}\nimport sys\nsys.argv = ['lobstack', 'worker']\nfrom clients.cli import run\nrun()\n"
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        # Vault and Temporal at closed ports: were the check not first, the failure would be a different one.
        env=environment({"VAULT_ADDR": "http://127.0.0.1:9", "VAULT_TOKEN": "t", "TEMPORAL_ADDRESS": "127.0.0.1:9"}),
    )
    assert done.returncode == 2, done
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    [line] = lines
    assert line.startswith("lobstack: error: the worker cannot start: "), line
    assert package in line and GONE[package] in line and PINS[package] in line, line
    assert "Traceback" not in done.stderr and ".py" not in line
