from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from contracts.models import AgentState
from contracts.spec import SpecError
from store import AgentRecord, AuditRecord, Registry, upgrade_database
from store.engine import make_engine
from store.tenancy import _sqlite_write_lock
from tests.store.helpers import run_together, transition


@pytest.fixture
def registry(database_url: str) -> Iterator[Registry]:
    upgrade_database(database_url)
    with Registry.from_url(database_url) as reg:
        yield reg


def test_record_creates_the_row_and_one_event(registry: Registry) -> None:
    assert not registry.exists("a1")
    assert registry.record(transition(details={"approval": "not required"}))

    agent = registry.get("a1")
    assert isinstance(agent, AgentRecord)
    assert (agent.account_id, agent.name, agent.provider, agent.region, agent.size) == (
        "acme",
        "helper",
        "local",
        "eu-central",
        "small",
    )
    assert agent.state is AgentState.PROVISIONING
    assert agent.health == "unknown"
    assert agent.created_at == agent.updated_at
    assert registry.exists("a1")

    [event] = registry.events()
    assert isinstance(event, AuditRecord)
    assert (event.event_key, event.agent_id, event.account_id, event.action) == (
        "agent-a1/requested",
        "a1",
        "acme",
        "agent.requested",
    )
    assert event.state is AgentState.PROVISIONING
    assert event.details == {"approval": "not required"}


def test_same_event_key_twice_writes_once(registry: Registry) -> None:
    assert registry.record(transition())
    # A retried activity: same key, even if it now carries other values.
    assert not registry.record(transition(state=AgentState.RUNNING, vm_id="vm-9"))

    assert len(registry.events()) == 1
    agent = registry.get("a1")
    assert agent is not None
    assert agent.state is AgentState.PROVISIONING
    assert agent.vm_id == ""


def test_state_progression_keeps_vm_id_when_later_transitions_omit_it(registry: Registry) -> None:
    t0 = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)
    registry.record(transition(at=t0))
    registry.record(
        transition(
            event_key="k/vm", action="vm.created", vm_id="vm-1", address="10.0.0.5", at=t0 + timedelta(seconds=5)
        )
    )
    registry.record(
        transition(
            event_key="k/running",
            action="agent.running",
            state=AgentState.RUNNING,
            health="healthy",
            name="",
            provider="",
            region="",
            size="",
            at=t0 + timedelta(seconds=9),
        )
    )
    registry.record(
        transition(
            event_key="k/failed",
            action="agent.failed",
            state=AgentState.FAILED,
            reason="health deadline passed",
            at=t0 + timedelta(seconds=20),
        )
    )

    agent = registry.get("a1")
    assert agent is not None
    assert agent.state is AgentState.FAILED
    assert (agent.vm_id, agent.address, agent.health) == ("vm-1", "10.0.0.5", "healthy")
    assert (agent.name, agent.provider, agent.region, agent.size) == ("helper", "local", "eu-central", "small")
    assert agent.last_error == "health deadline passed"
    assert agent.created_at == t0
    assert agent.updated_at == t0 + timedelta(seconds=20)


def test_list_agents_by_account_and_by_state(registry: Registry) -> None:
    for agent_id, account_id, state in [
        ("a1", "acme", AgentState.RUNNING),
        ("a2", "acme", AgentState.DESTROYED),
        ("b1", "globex", AgentState.RUNNING),
        ("b2", "globex", AgentState.PENDING_APPROVAL),
    ]:
        registry.record(transition(event_key=f"{agent_id}/1", agent_id=agent_id, account_id=account_id, state=state))

    def ids(agents: list[AgentRecord]) -> list[str]:
        return [a.agent_id for a in agents]

    assert ids(registry.list_agents()) == ["a1", "a2", "b1", "b2"]
    assert ids(registry.list_agents(account_id="acme")) == ["a1", "a2"]
    assert ids(registry.list_agents(states=[AgentState.RUNNING])) == ["a1", "b1"]
    assert ids(registry.list_agents(account_id="globex", states={"running", "pending_approval"})) == ["b1", "b2"]
    assert registry.list_agents(account_id="initech") == []
    assert registry.list_agents(states=[]) == []
    with pytest.raises(ValueError, match="bogus"):
        registry.list_agents(states=["bogus"])


def test_events_in_insertion_order_with_actor_and_reason(registry: Registry) -> None:
    registry.record(transition(event_key="a1/requested", state=AgentState.PENDING_APPROVAL, actor="svc-billing"))
    registry.record(
        transition(event_key="b1/requested", agent_id="b1", account_id="globex", state=AgentState.PENDING_APPROVAL)
    )
    registry.record(transition(event_key="a1/approved", action="agent.approved", actor="alice", reason="ticket OPS-12"))
    registry.record(transition(event_key="a1/vm", action="vm.created", vm_id="vm-1"))
    registry.record(
        transition(
            event_key="a1/destroyed",
            action="agent.destroyed",
            state=AgentState.DESTROYED,
            actor="bob",
            reason="done",
            details={"vms": "0", "secrets": "0"},
        )
    )

    events = registry.events(agent_id="a1")
    assert [e.action for e in events] == ["agent.requested", "agent.approved", "vm.created", "agent.destroyed"]
    assert [(e.actor, e.reason) for e in events] == [
        ("svc-billing", ""),
        ("alice", "ticket OPS-12"),
        ("lobstack", ""),
        ("bob", "done"),
    ]
    assert events[-1].details == {"vms": "0", "secrets": "0"}
    assert [e.id for e in events] == sorted(e.id for e in events)
    assert [e.agent_id for e in registry.events(account_id="globex")] == ["b1"]
    assert len(registry.events()) == 5
    assert registry.events(agent_id="b1", account_id="acme") == []


def test_timezone_aware_datetimes_round_trip(registry: Registry) -> None:
    ist = timezone(timedelta(hours=5, minutes=30))
    at = datetime(2025, 3, 9, 1, 30, 15, 123456, tzinfo=ist)
    registry.record(transition(at=at))

    before = datetime.now(UTC)
    registry.record(transition(event_key="k/2", action="vm.created"))  # at=None: now
    after = datetime.now(UTC)

    first, second = registry.events()
    assert first.at == at
    assert first.at.tzinfo is UTC
    assert first.at.hour == 20  # 01:30 at +05:30 is 20:00 UTC the day before
    assert before <= second.at <= after
    agent = registry.get("a1")
    assert agent is not None
    assert agent.created_at == at
    assert agent.created_at.tzinfo is UTC
    assert agent.updated_at == second.at


def test_details_guard_refuses_a_token_key_and_writes_nothing(registry: Registry) -> None:
    with pytest.raises(SpecError, match=r"details\.token") as caught:
        registry.record(transition(details={"token": "hvs.CAESIJ-not-a-real-token-at-all"}))
    assert caught.value.field == "details.token"
    assert "hvs." not in str(caught.value)
    assert registry.events() == []
    assert not registry.exists("a1")


def test_agent_id_cannot_move_to_another_account(registry: Registry) -> None:
    registry.record(transition())
    with pytest.raises(SpecError, match="account_id"):
        registry.record(transition(event_key="k/2", account_id="globex", state=AgentState.RUNNING))
    # Nothing of the refused transition is left: its event was rolled back with it.
    assert [e.event_key for e in registry.events()] == ["agent-a1/requested"]
    agent = registry.get("a1")
    assert agent is not None
    assert (agent.account_id, agent.state) == ("acme", AgentState.PROVISIONING)


def test_row_and_event_are_one_transaction(registry: Registry) -> None:
    # A constraint only the agent upsert can violate, after the event insert has succeeded.
    with registry.engine.begin() as conn:
        conn.execute(text("CREATE UNIQUE INDEX agents_vm_id_test ON agents (vm_id) WHERE vm_id <> ''"))
    registry.record(transition(vm_id="vm-1"))
    with pytest.raises(IntegrityError, match=r"agents_vm_id_test|UNIQUE"):
        registry.record(transition(event_key="b1/1", agent_id="b1", vm_id="vm-1"))
    assert [e.agent_id for e in registry.events()] == ["a1"]
    assert not registry.exists("b1")


def test_concurrent_record_of_one_event_key_writes_one_event(registry: Registry) -> None:
    results = run_together(8, lambda i: registry.record(transition(vm_id=f"vm-{i}")))
    assert results.count(True) == 1
    assert len(registry.events()) == 1
    agent = registry.get("a1")
    assert agent is not None
    # The row was written by the winner only.
    assert agent.vm_id == f"vm-{results.index(True)}"


def test_concurrent_first_sight_of_one_agent_makes_one_row(registry: Registry) -> None:
    results = run_together(8, lambda i: registry.record(transition(event_key=f"k/{i}", action="agent.health")))
    assert results == [True] * 8
    assert len(registry.events(agent_id="a1")) == 8
    assert [a.agent_id for a in registry.list_agents()] == ["a1"]


def test_records_are_detached_and_frozen(registry: Registry) -> None:
    registry.record(transition())
    assert registry.get("nope") is None
    agent = registry.get("a1")
    assert agent is not None
    registry.close()  # the record needs no session or connection
    with pytest.raises(AttributeError):
        agent.state = AgentState.RUNNING  # type: ignore[misc]  # frozen: the test proves it refuses
    assert agent.state is AgentState.PROVISIONING


def test_concurrent_writers_of_one_account_keep_one_unbroken_chain(registry: Registry) -> None:
    # Writers in one process queue on the engine's SQLite write lock instead of SQLite's sleeping busy handler.
    results = run_together(16, lambda i: registry.record(transition(agent_id=f"a{i}", event_key=f"k/{i}")))
    assert results == [True] * 16
    assert len(registry.events()) == 16
    assert registry.verify_audit().ok


def test_sqlite_write_lock_is_one_per_engine(tmp_path: Path) -> None:
    first, second = make_engine(f"sqlite:///{tmp_path / 'a.db'}"), make_engine(f"sqlite:///{tmp_path / 'b.db'}")
    try:
        assert _sqlite_write_lock(first) is _sqlite_write_lock(first)
        assert _sqlite_write_lock(first) is not _sqlite_write_lock(second)
    finally:
        first.dispose()
        second.dispose()
