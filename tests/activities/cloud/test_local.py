"""The local provider's own checks, on real processes."""

from __future__ import annotations

from pathlib import Path

import pytest

from activities.cloud.local import LocalProvider
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
