"""The development servers never fail to start because another process took the port picked for them: a picked port
is reserved (TIME_WAIT) against every bind(0) and outgoing connection, and a server that still loses one is started
again on new ports. A lost race used to fail the run with "address already in use" (tests/devstack/test_dev_budget.py).

The lost race is reproduced with a real listening socket: the starter's port picker first returns a port this test
holds, exactly what another process binding it in between looks like to the server."""

from __future__ import annotations

import errno
import socket
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

import devstack


@pytest.fixture
def held() -> Iterator[int]:
    """A port another process took: this socket listens on it for the whole test."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(1)
        yield sock.getsockname()[1]


def picks_first(ports: list[int], then: Callable[[], int]) -> Callable[[], int]:
    queue = list(ports)
    return lambda: queue.pop(0) if queue else then()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the TIME_WAIT reservation is made on Linux")
def test_a_picked_port_is_reserved_for_the_server_it_was_picked_for() -> None:
    port = devstack.free_port()
    # Anyone binding without SO_REUSEADDR (every bind(0) is refused a port in this state by the kernel) is refused.
    with socket.socket() as other, pytest.raises(OSError) as refused:
        other.bind(("127.0.0.1", port))
    assert refused.value.errno == errno.EADDRINUSE
    # A server (SO_REUSEADDR, as Go servers, uvicorn and asyncio set) binds and listens there.
    with socket.socket() as server:
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", port))
        server.listen(1)
    # OpenBao's pair: its cluster listener's port P+1 is reserved as well.
    pair = devstack.free_port_pair()
    for port in (pair, pair + 1):
        with socket.socket() as other, pytest.raises(OSError):
            other.bind(("127.0.0.1", port))


def test_openbao_starts_again_when_its_port_was_taken(tmp_path: Path, held: int) -> None:
    server = devstack.start_openbao(tmp_path, pick_port=picks_first([held], devstack.free_port_pair))
    try:
        assert server.addr != f"http://127.0.0.1:{held}"
        # The first start lost the port (its own log says so), the second one is the server we got.
        assert "address already in use" in (tmp_path / f"openbao-{held}.log").read_text()
        lookup = httpx.get(f"{server.addr}/v1/auth/token/lookup-self", headers={"X-Vault-Token": server.root_token})
        assert lookup.status_code == 200
        assert server.process.listens_on(int(server.addr.rsplit(":", 1)[1])) in (True, None)
    finally:
        server.stop()


def test_restartable_openbao_starts_again_when_its_port_was_taken(tmp_path: Path, held: int) -> None:
    server = devstack.start_openbao_server(tmp_path, pick_port=picks_first([held], devstack.free_port))
    try:
        assert server.addr != f"http://127.0.0.1:{held}"
        assert httpx.get(f"{server.addr}/v1/sys/health").status_code == 200
    finally:
        server.stop()


def test_temporal_starts_again_when_its_frontend_or_ui_port_was_taken(tmp_path: Path, held: int) -> None:
    # First start: frontend on the held port. Second: UI on it. Third: both free.
    picks = picks_first([held, devstack.free_port(), devstack.free_port(), held], devstack.free_port)
    temporal = devstack.start_temporal(tmp_path, pick_port=picks)
    try:
        frontend = int(temporal.address.rsplit(":", 1)[1])
        ui = int(temporal.ui_url.rsplit(":", 1)[1])
        assert held not in (frontend, ui)
        assert temporal.process.listens_on(frontend, ui) in (True, None)
        logs = sorted(p.name for p in tmp_path.glob("temporal-*.log"))
        assert len(logs) == 3, logs
        assert "address already in use" in (tmp_path / f"temporal-{held}.log").read_text()
        assert httpx.get(f"{temporal.ui_url}/", timeout=10).status_code == 200
    finally:
        temporal.stop()


def test_a_port_the_caller_gave_is_reported_in_use_not_retried(tmp_path: Path, held: int) -> None:
    with pytest.raises(devstack.PortInUse) as taken:
        devstack.start_openbao(tmp_path, port=held)
    assert taken.value.port == held and not taken.value.chosen
    assert [p.name for p in tmp_path.glob("openbao-*.log")] == [f"openbao-{held}.log"]
    with pytest.raises(devstack.PortInUse) as taken:
        devstack.start_temporal(tmp_path, ui_port=held)
    assert taken.value.port == held and not taken.value.chosen
