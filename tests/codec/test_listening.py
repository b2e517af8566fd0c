"""The socket our HTTP servers listen on: every accepted connection sends without Nagle's delay."""

from __future__ import annotations

import socket

import pytest

from connection.listening import listening_socket


@pytest.mark.parametrize("host", ["127.0.0.1", "[::1]"])
def test_accepted_connections_inherit_nodelay(host: str) -> None:
    try:
        server = listening_socket(host, 0)
    except OSError as exc:
        pytest.skip(f"{host} cannot be bound here: {exc}")
    with server:
        server.listen()
        with socket.create_connection(server.getsockname()[:2]) as client:
            accepted, _ = server.accept()
            with accepted:
                # Without it each answer, headers then body, waits for the client's delayed ACK (40 ms a call).
                assert accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1
                assert client.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 0  # set by us, not by default


def test_a_taken_port_is_refused_and_nothing_leaks() -> None:
    with listening_socket("127.0.0.1", 0) as first:
        first.listen()
        with pytest.raises(OSError):
            listening_socket("127.0.0.1", first.getsockname()[1])
