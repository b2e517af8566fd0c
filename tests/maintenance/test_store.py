"""The registry's maintenance tables on SQLite and PostgreSQL: agent data (ciphertext only) and fleet health."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from contracts.models import AgentState
from contracts.spec import SpecError
from store import HealthRecord, Registry, upgrade_database
from tests.maintenance.helpers import registered


@pytest.fixture
def registry(database_url: str) -> Iterator[Registry]:
    upgrade_database(database_url)
    with Registry.from_url(database_url) as reg:
        yield reg


def test_agent_data_upsert_compare_and_set_and_delete(registry: Registry) -> None:
    registry.put_agent_data(agent_id="a1", account_id="acme", name="smtp", ciphertext="vault:v1:x", key_version=1)
    registry.put_agent_data(agent_id="a1", account_id="acme", name="smtp", ciphertext="vault:v1:y", key_version=1)
    registry.put_agent_data(agent_id="a1", account_id="acme", name="cfg", ciphertext="vault:v2:z", key_version=2)
    row = registry.agent_data("a1", "smtp")
    assert row is not None and row.ciphertext == "vault:v1:y" and "vault:v1:y" not in repr(row)
    assert [r.name for r in registry.agent_data_of("a1", below_version=2)] == ["smtp"]
    with pytest.raises(SpecError, match="account_id"):
        registry.put_agent_data(agent_id="a1", account_id="other", name="smtp", ciphertext="c", key_version=1)

    assert not registry.replace_ciphertext("a1", "smtp", old="vault:v1:x", new="vault:v2:q", key_version=2)
    assert registry.replace_ciphertext("a1", "smtp", old="vault:v1:y", new="vault:v2:q", key_version=2)
    assert registry.agent_data_of("a1", below_version=2) == []
    assert registry.agent_data_counts() == {"a1": 2}
    assert registry.delete_agent_data("a1") == 2
    assert registry.delete_agent_data("a1") == 0 and registry.agent_data_counts() == {}


def test_health_is_saved_shown_on_probed_rows_only_and_pruned(registry: Registry) -> None:
    now = datetime.now(UTC)
    registry.record(registered("up"))
    registry.record(registered("gone", state=AgentState.DESTROYED))
    registry.save_health(
        [
            HealthRecord("up", False, "unreachable", 1, "http://127.0.0.1:1", now, reason="ConnectError"),
            HealthRecord("gone", False, "unreachable", 1, "http://127.0.0.1:2", now),
        ]
    )
    assert registry.health_all()["up"].consecutive_failures == 1
    up, gone = registry.get("up"), registry.get("gone")
    assert up is not None and up.health == "unreachable" and up.state == AgentState.RUNNING
    assert gone is not None and gone.health == "unknown", "a finished agent's row keeps its own health"
    registry.save_health([HealthRecord("up", False, "unreachable", 2, "http://127.0.0.1:1", now)])
    assert registry.health_all()["up"].consecutive_failures == 2
    assert registry.prune_health() == 1
    assert set(registry.health_all()) == {"up"}
