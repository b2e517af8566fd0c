from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from temporalio.testing import ActivityEnvironment

from activities.errors import RegistryRejected, RegistryUnavailable
from activities.registry import RegistryActivities
from store import Registry, make_engine, upgrade_database
from tests.store.helpers import transition


@pytest.fixture
def activities(database_url: str) -> Iterator[RegistryActivities]:
    upgrade_database(database_url)
    with Registry.from_url(database_url) as registry:
        yield RegistryActivities(registry)


def test_record_transition_writes_once(activities: RegistryActivities) -> None:
    env = ActivityEnvironment()
    assert env.run(activities.record_transition, transition()) is True
    assert env.run(activities.record_transition, transition()) is False
    assert len(activities.registry.events()) == 1


def test_a_secret_carrier_is_rejected_not_retried(activities: RegistryActivities) -> None:
    with pytest.raises(RegistryRejected, match=r"details\.password") as caught:
        ActivityEnvironment().run(activities.record_transition, transition(details={"password": "pw-123456"}))
    assert not caught.value.retryable
    assert "pw-123456" not in str(caught.value)


def test_an_integrity_error_is_rejected_not_retried(activities: RegistryActivities) -> None:
    with activities.registry.engine.begin() as conn:
        conn.execute(text("CREATE UNIQUE INDEX audit_one_action_test ON audit_events (agent_id, action)"))
    activities.record_transition(transition())
    with pytest.raises(RegistryRejected, match=r"IntegrityError|UniqueViolation") as caught:
        activities.record_transition(transition(event_key="k/again"))
    assert not caught.value.retryable
    assert "[SQL:" not in str(caught.value)


@pytest.fixture(params=["postgresql-port-1", "sqlite-dir-replaced"])
def unreachable_registry(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Registry]:
    if request.param == "postgresql-port-1":
        engine = make_engine("postgresql+psycopg://postgres@127.0.0.1:1/x")  # nothing listens on port 1
    else:
        directory = tmp_path / "gone"
        engine = make_engine(f"sqlite:///{directory / 'registry.db'}")
        # The directory disappears after start-up and a file takes its place: the database cannot be opened.
        directory.rmdir()
        directory.write_text("")
    yield Registry(engine=engine)
    engine.dispose()


def test_an_unreachable_database_is_retryable(unreachable_registry: Registry) -> None:
    activities = RegistryActivities(unreachable_registry)
    with pytest.raises(RegistryUnavailable, match="database unavailable") as caught:
        ActivityEnvironment().run(activities.record_transition, transition())
    assert caught.value.retryable
    assert isinstance(caught.value.__cause__, Exception)
    assert "[SQL:" not in str(caught.value)
    assert caught.value.to_application_error().non_retryable is False
