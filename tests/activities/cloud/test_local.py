"""The local provider's own checks, on real processes."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from activities.cloud.local import LocalProvider, pid_alive
from activities.errors import ProviderRejected
from contracts.bootstrap import BootstrapConfig
from contracts.models import CreateVMRequest


def test_a_state_dir_too_long_for_the_agent_socket_is_refused_before_anything_starts(tmp_path: Path) -> None:
    """The agent API is a Unix socket under the state directory, and such a path holds at most 107 bytes: an agent that
    could never be authorized a tool is refused at create, naming what to change, instead of booting unhealthy."""
    local = LocalProvider(state_dir=tmp_path / ("d" * 80), stop_timeout_s=5)
    config = BootstrapConfig("a1", "http://127.0.0.1:9", "role", "s.NeverUsed", "auth/approle/role/agent-a1/secret-id")
    try:
        with pytest.raises(ProviderRejected) as refused:
            local.create(CreateVMRequest("a1", "acme", "helper", "local", "eu-central", "small"), config)
        message = str(refused.value)
        assert "agent API socket" in message and "107 bytes" in message and "LOBSTACK_HOME" in message
        assert local.list_managed() == [] and not local.state_dir.exists()
    finally:
        for vm in local.list_managed():
            local.delete(vm.vm_id)


def _cmdline_once_execd(pid: int, program: bytes, timeout_s: float = 10.0) -> bytes:
    deadline = time.monotonic() + timeout_s
    while (cmdline := Path(f"/proc/{pid}/cmdline").read_bytes()).split(b"\0")[0] != program:
        assert time.monotonic() < deadline, f"process {pid} never exec'd {program!r}: {cmdline!r}"
        time.sleep(0.01)
    return cmdline


def test_a_vm_process_that_execs_stays_the_vm_until_deleted(tmp_path: Path) -> None:
    """A bridge command may be a wrapper that execs the real program (and, inside the exec, the process's command line
    reads empty for a moment). The VM is its process, whatever it runs: while it lives the VM is not `stopped`, and
    delete ends it rather than leaving it behind unseen."""
    wrapper = ["/bin/sh", "-c", "exec sleep 300", "wrapper"]  # the config path is appended, then dropped by the exec
    local = LocalProvider(state_dir=tmp_path, bridge_argv=wrapper, stop_timeout_s=5)
    config = BootstrapConfig("a2", "http://127.0.0.1:9", "role", "s.NeverUsed", "auth/approle/role/agent-a2/secret-id")
    vm = local.create(CreateVMRequest("a2", "acme", "helper", "local", "eu-central", "small"), config)
    pid = local.pid_of("a2")
    try:
        assert pid is not None
        cmdline = _cmdline_once_execd(pid, b"sleep")
        assert b"bootstrap.json" not in cmdline
        seen = local.get(vm.vm_id)
        assert seen is not None and seen.status == "creating"
        assert local.delete(vm.vm_id)
        assert not pid_alive(pid)
    finally:
        for left in local.list_managed():
            local.delete(left.vm_id)
