"""Simulators on one machine never hand out the same VM address: each holds its own loopback /16 for its lifetime."""

from __future__ import annotations

from pathlib import Path

from cloudsim.state import SimState


def _state(state_dir: Path) -> SimState:
    return SimState(state_dir=state_dir, seed=0, boot_latency_s=0.0)


def test_two_simulators_whose_ports_pick_the_same_block_still_get_their_own(tmp_path: Path) -> None:
    """Ports 8251 and 8501 both pick block 2 (1 + port % 250): the second finds it held and takes the next free one,
    so a VM of one can never bind the address a VM of the other was given."""
    first, second = _state(tmp_path / "a"), _state(tmp_path / "b")
    first.set_ip_block(8251)
    second.set_ip_block(8501)
    ips_first = {first.allocate_ip() for _ in range(3)}
    ips_second = {second.allocate_ip() for _ in range(3)}
    assert len(ips_first) == 3 and len(ips_second) == 3
    blocks_first = {ip.split(".")[1] for ip in ips_first}
    blocks_second = {ip.split(".")[1] for ip in ips_second}
    assert len(blocks_first) == 1 and len(blocks_second) == 1 and blocks_first != blocks_second


def test_a_simulator_without_a_port_claims_a_block_before_its_first_address(tmp_path: Path) -> None:
    first, second = _state(tmp_path / "a"), _state(tmp_path / "b")
    assert first.allocate_ip().split(".")[1] != second.allocate_ip().split(".")[1]
