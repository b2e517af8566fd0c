"""Session fixtures that start the real components: OpenBao, PostgreSQL databases, Temporal servers, cloudsim.

The servers come from the development stack's own starters (devstack/), so tests run them as `lobstack dev` does.

Nothing is mocked. PostgreSQL is the machine's server at 127.0.0.1:5432; where it is unreachable the PostgreSQL cases
are skipped on a developer machine and fail under CI (CI=true), because CI must prove both databases.
"""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.testing import WorkflowEnvironment

import devstack
from cloudsim.ratelimit import DEFAULT_LIMITS
from cloudsim.testing import RunningSim
from connection.codec import Keyring, data_converter
from tests.stack import AGENTS, ENCRYPTED_STACK_KEY_ID, Stack, make_stack, reap
from workers.converter import with_converter
from workflows.search_attributes import APPROVAL_KEYS

PG_ADMIN_URL = os.environ.get("LOBSTACK_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


@pytest.fixture(scope="session")
def session_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("lobstack")


@pytest.fixture(scope="session")
def openbao(session_dir: Path) -> Iterator[devstack.OpenBaoDev]:
    server = devstack.start_openbao(session_dir)
    yield server
    server.stop()


def _postgres_reachable() -> str | None:
    import sqlalchemy

    engine = sqlalchemy.create_engine(PG_ADMIN_URL)
    try:
        with engine.connect() as conn:
            conn.execute(sqlalchemy.text("select 1"))
    except Exception as exc:
        return f"{type(exc).__name__}: {str(exc).splitlines()[0]}"
    finally:
        engine.dispose()
    return None


@pytest.fixture(scope="session")
def postgres_admin_url() -> str:
    problem = _postgres_reachable()
    if problem:
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL at {PG_ADMIN_URL} is required in CI: {problem}")
        pytest.skip(f"PostgreSQL not reachable at {PG_ADMIN_URL}: {problem}")
    return PG_ADMIN_URL


def _fresh_postgres_database(admin_url: str) -> tuple[str, str]:
    """Create an empty database for one test; returns (url, name)."""
    import sqlalchemy

    name = f"lobstack_t_{uuid.uuid4().hex[:12]}"
    engine = sqlalchemy.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(sqlalchemy.text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    return admin_url.rsplit("/", 1)[0] + f"/{name}", name


def _drop_postgres_database(admin_url: str, name: str) -> None:
    import sqlalchemy

    engine = sqlalchemy.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(sqlalchemy.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database of each kind the service supports, one per test."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'registry.db'}"
        return
    admin_url = request.getfixturevalue("postgres_admin_url")
    url, name = _fresh_postgres_database(admin_url)
    try:
        yield url
    finally:
        _drop_postgres_database(admin_url, name)


@pytest.fixture(scope="session")
async def temporal_dev() -> AsyncIterator[WorkflowEnvironment]:
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=devstack.temporal_binary(),
        search_attributes=APPROVAL_KEYS,
        dev_server_extra_args=devstack.dynamic_config_flags(),
    )
    yield env
    await env.shutdown()


@pytest.fixture(scope="session")
async def temporal_time_skipping() -> AsyncIterator[WorkflowEnvironment]:
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=devstack.temporal_test_server_binary()
    )
    # It has no option to register them at start; the lifecycle's approval gate publishes them.
    await env.client.operator_service.add_search_attributes(
        AddSearchAttributesRequest(
            namespace=env.client.namespace,
            search_attributes={k.name: IndexedValueType.ValueType(k.indexed_value_type) for k in APPROVAL_KEYS},
        )
    )
    yield env
    await env.shutdown()


@pytest.fixture
def stack(temporal_dev: WorkflowEnvironment, openbao: devstack.OpenBaoDev, tmp_path: Path) -> Iterator[Stack]:
    """On the dev server with a SQLite registry; tests that must prove PostgreSQL too use `stack_any_db`."""
    made = make_stack(temporal_dev.client, openbao, f"sqlite:///{tmp_path / 'registry.db'}", tmp_path)
    yield made
    reap(made)


@pytest.fixture
def stack_any_db(
    temporal_dev: WorkflowEnvironment, openbao: devstack.OpenBaoDev, database_url: str, tmp_path: Path
) -> Iterator[Stack]:
    made = make_stack(temporal_dev.client, openbao, database_url, tmp_path)
    yield made
    reap(made)


@pytest.fixture(params=["plain", "encrypted"])
def plain_or_encrypted_stack(
    request: pytest.FixtureRequest, temporal_dev: WorkflowEnvironment, openbao: devstack.OpenBaoDev, tmp_path: Path
) -> Iterator[Stack]:
    """`stack`, once without and once with payload encryption (client and workers share the codec's key)."""
    client = temporal_dev.client
    if request.param == "encrypted":
        keyring = Keyring.generate(ENCRYPTED_STACK_KEY_ID)
        client = with_converter(temporal_dev.client, data_converter(keyring))
    made = make_stack(client, openbao, f"sqlite:///{tmp_path / 'registry.db'}", tmp_path)
    yield made
    reap(made)


@pytest.fixture
def never_healthy_argv() -> list[str]:
    return [sys.executable, str(AGENTS / "never_healthy.py")]


@pytest.fixture
def gated_argv(tmp_path: Path) -> tuple[list[str], Path]:
    import os

    fifo = tmp_path / "boot-gate"
    os.mkfifo(fifo)
    return [sys.executable, str(AGENTS / "gated_bridge.py"), str(fifo)], fifo


@pytest.fixture(scope="session")
def cloudsim(session_dir: Path) -> Iterator[RunningSim]:
    sim = devstack.start_simulator(session_dir / "cloudsim", boot_latency_s=0.2)
    yield sim
    sim.stop()


# The adapters under test call cloudsim directly, without the worker's API budget (activities/cloud/budget.py), and
# cloudsim answers in well under a millisecond: a test's burst of calls can pass Vultr's documented 30 a second. Tests
# of rate limits set their own; the simulator's defaults stay the documented ones.
UNBUDGETED_LIMITS: dict[str, dict[str, Any]] = {
    **{p: dict(v) for p, v in DEFAULT_LIMITS.items()},
    "vultr": {"enabled": True, "limit": 1000, "window_s": 1.0},
}


@pytest.fixture
def sim(cloudsim: RunningSim) -> Iterator[RunningSim]:
    """The session's cloudsim, with faults cleared after each test so no test inherits another's weather."""
    cloudsim.configure(rate_limits=UNBUDGETED_LIMITS)
    yield cloudsim
    cloudsim.clear_faults()
    cloudsim.configure(rate_limits=UNBUDGETED_LIMITS)
