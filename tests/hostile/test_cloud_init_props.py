"""Cloud-init user-data under hostile bootstrap values: the YAML always parses to exactly the fixed structure, the
config decodes back byte for byte, and nothing a value holds can add a key, a file or a command."""

from __future__ import annotations

import base64
import json
from dataclasses import asdict, fields
from typing import Any

import pytest
import yaml
from hypothesis import example, given
from hypothesis import strategies as st

from activities.cloud.adapter_support import vm_user_data
from activities.cloud.userdata import check_size, render_cloud_init
from activities.errors import ProviderRejected
from contracts.bootstrap import AGENT_SOCKET, AGENT_USER, BOOTSTRAP_PATH, BRIDGE_PORT, BootstrapConfig
from contracts.regions import USER_DATA_LIMITS
from tests.hostile.strategies import hostile_text

RUNCMD = [["python3", "-m", "bridge", "--config", BOOTSTRAP_PATH]]
# The distribution's default user, and the system user the agent's own process runs as (the agent API's only caller).
USERS = ["default", {"name": AGENT_USER, "system": True, "shell": "/usr/sbin/nologin", "lock_passwd": True}]
_TEXT_FIELDS = [f.name for f in fields(BootstrapConfig) if f.type in ("str", str)]
assert len(_TEXT_FIELDS) >= 8, _TEXT_FIELDS
_NUMBER_FIELDS = {"listen_port": st.integers(0, 65535)} | {
    name: st.floats(min_value=0, max_value=1e9, allow_nan=False)
    for name in ("skills_poll_s", "skills_stale_s", "authorize_wait_s")
}


def _text() -> st.SearchStrategy[str]:
    # Any unicode, lone surrogates included (the JSON is ASCII-escaped), up to sizes that cross the providers' limits.
    return st.one_of(hostile_text(max_size=200), st.text(max_size=2000), st.just("é" * 6000))


configs = st.builds(BootstrapConfig, **{name: _text() for name in _TEXT_FIELDS}, **_NUMBER_FIELDS)
HUGE = BootstrapConfig("a", "http://v", "r", "\n- " * 12_000, "auth/approle/role/a/secret-id")


def _parse(user_data: str) -> dict[str, Any]:
    assert user_data.startswith("#cloud-config\n")
    doc = yaml.safe_load(user_data)
    assert isinstance(doc, dict) and set(doc) == {"users", "write_files", "runcmd"}, doc
    assert doc["users"] == USERS
    return doc


@given(configs)
def test_user_data_parses_to_the_fixed_structure_and_decodes_back(config: BootstrapConfig) -> None:
    doc = _parse(render_cloud_init(config))
    assert doc["runcmd"] == RUNCMD
    files = doc["write_files"]
    assert isinstance(files, list) and len(files) == 1
    entry = files[0]
    assert set(entry) == {"path", "owner", "permissions", "encoding", "content"}
    assert entry["path"] == BOOTSTRAP_PATH and entry["owner"] == "root:root"
    assert entry["permissions"] == "0600" and entry["encoding"] == "b64"
    decoded = base64.b64decode(entry["content"], validate=True).decode()
    assert decoded == config.to_json()
    assert BootstrapConfig.from_json(decoded) == config
    assert json.loads(decoded) == asdict(config)


@given(configs, st.sampled_from(sorted(USER_DATA_LIMITS)))
@example(HUGE, "hetzner")
@example(HUGE, "vultr")
def test_vm_user_data_fits_the_provider_or_is_refused_naming_user_data(config: BootstrapConfig, provider: str) -> None:
    try:
        user_data = vm_user_data(provider, config)
    except ProviderRejected as err:
        assert (
            str(err).startswith("user_data: ") and provider in str(err) and str(USER_DATA_LIMITS[provider]) in str(err)
        )
        assert len(render_cloud_init(config).encode()) > USER_DATA_LIMITS[provider] - 200
        return
    assert len(user_data.encode()) <= USER_DATA_LIMITS[provider]
    entry = _parse(user_data)["write_files"][0]
    on_vm = BootstrapConfig.from_json(base64.b64decode(entry["content"]).decode())
    # The VM's bridge serves /health where the health check probes, and the agent API only on its socket for the
    # agent's user (which cloud-init creates), whatever the caller's config said.
    assert (on_vm.listen_host, on_vm.listen_port, on_vm.address_file) == ("0.0.0.0", BRIDGE_PORT, "")
    assert (
        (on_vm.agent_socket, on_vm.agent_user)
        == (AGENT_SOCKET, AGENT_USER)
        == ("/run/lobstack/agent.sock", "lobstack-agent")
    )
    assert on_vm.wrapped_secret_id == config.wrapped_secret_id and on_vm.agent_id == config.agent_id


@pytest.mark.parametrize("provider", sorted(USER_DATA_LIMITS))
@given(extra=st.integers(min_value=1, max_value=200_000))
def test_check_size_refuses_exactly_over_the_limit(provider: str, extra: int) -> None:
    limit = USER_DATA_LIMITS[provider]
    check_size(provider, "x" * limit)
    with pytest.raises(ProviderRejected) as caught:
        check_size(provider, "x" * (limit + extra))
    assert str(caught.value).startswith("user_data: ") and f"{limit} bytes" in str(caught.value)
    # Bytes, not characters: multi-byte text is measured as it travels.
    with pytest.raises(ProviderRejected):
        check_size(provider, "é" * (limit // 2 + 1))
