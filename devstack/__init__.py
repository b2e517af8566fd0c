"""The development stack: Temporal, OpenBao, cloudsim, a registry, the gateway and a worker, started from installed
packages for `lobstack dev`, `make demo`, the tests, the benches and `make chaos`. Never on the product's path: the
production worker (`workers/`) imports nothing from here (tests/workers/test_no_dev_imports.py).

This package names the servers and their helpers, which import little (httpx, cloudsim's client). The whole stack,
which imports the service, is `devstack.stack.dev_stack`; `lobstack dev` is `devstack.dev.run_dev`.
"""

from devstack.errors import DevStackError, PortInUse
from devstack.files import open_private, private_dir, write_private
from devstack.ports import START_ATTEMPTS, free_port, free_port_pair
from devstack.processes import (
    Process,
    lobstack_binary,
    openbao_binary,
    spawn,
    temporal_binary,
    temporal_test_server_binary,
)
from devstack.server_tuning import SERVER_DYNAMIC_CONFIG, dynamic_config_flags
from devstack.servers import (
    VAULT_BOOTSTRAP,
    OpenBaoDev,
    OpenBaoServer,
    TemporalDev,
    bootstrap_openbao,
    start_openbao,
    start_openbao_server,
    start_simulator,
    start_temporal,
)
from devstack.worker import WorkerProcess

__all__ = [
    "SERVER_DYNAMIC_CONFIG",
    "START_ATTEMPTS",
    "VAULT_BOOTSTRAP",
    "DevStackError",
    "OpenBaoDev",
    "OpenBaoServer",
    "PortInUse",
    "Process",
    "TemporalDev",
    "WorkerProcess",
    "bootstrap_openbao",
    "dynamic_config_flags",
    "free_port",
    "free_port_pair",
    "lobstack_binary",
    "open_private",
    "openbao_binary",
    "private_dir",
    "spawn",
    "start_openbao",
    "start_openbao_server",
    "start_simulator",
    "start_temporal",
    "temporal_binary",
    "temporal_test_server_binary",
    "write_private",
]
