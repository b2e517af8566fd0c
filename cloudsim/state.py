"""The simulator's whole state: VMs, provider actions, counters. One lock guards it; handlers hold it only briefly."""

from __future__ import annotations

import random
import socket
import subprocess
import threading
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from cloudsim.boot import BRIDGE_PORT

# VM addresses are 127.<block>.x.y, one block per simulator process (see `SimState.set_ip_block`).
_IP_BLOCKS = 250

# provisioning -> starting -> running; each provider maps these phases onto its own status words.
Phase = Literal["provisioning", "starting", "running"]


@dataclass
class Action:
    """A provider-side asynchronous operation (Hetzner actions, DigitalOcean actions)."""

    provider: str
    id: int
    command: str
    resource_id: int | str
    started: float
    finished: float | None = None
    status: str = "running"
    # DigitalOcean actions also carry the region.
    region: str = ""


@dataclass
class Firewall:
    """A provider firewall (Hetzner Firewall, DigitalOcean Cloud Firewall, Vultr firewall group): state only.

    Nothing is filtered on the loopback network; cloudsim keeps what the API was told, faithfully.
    """

    provider: str
    id: int | str
    name: str
    created: float
    labels: dict[str, str] = field(default_factory=dict)
    # Provider-shaped rules, kept as the API received them (each provider renders its own).
    rules: list[dict[str, Any]] = field(default_factory=list)
    # Hetzner `apply_to` servers and DigitalOcean `droplet_ids` / `tags`; Vultr instances point at their group.
    server_ids: list[int] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    description: str = ""
    modified: float = 0.0


@dataclass
class VM:
    provider: str
    id: int | str
    name: str
    location: str
    plan: str
    image: str
    ip: str
    vm_dir: Path
    created: float
    labels: dict[str, str] = field(default_factory=dict)
    tags: list[str] = field(default_factory=list)
    user_data: str = ""
    phase: Phase = "provisioning"
    bridge: subprocess.Popen[bytes] | None = None
    # Provider-specific fields that only that provider's renderer reads (hostname, os_id, action ids...).
    extra: dict[str, Any] = field(default_factory=dict)


class SimState:
    def __init__(self, *, state_dir: Path, seed: int, boot_latency_s: float) -> None:
        self.lock = threading.RLock()
        self.state_dir = state_dir
        self.seed = seed
        self.boot_latency_s = boot_latency_s
        self.rng = random.Random(seed)  # noqa: S311 - reproducible ids, not secrets
        self.vms: dict[tuple[str, str], VM] = {}
        self.actions: dict[tuple[str, int], Action] = {}
        self.firewalls: dict[tuple[str, str], Firewall] = {}
        self.calls: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        self.rate_limited: dict[str, int] = defaultdict(int)
        # VMs ever created, per provider and name: a name created twice is a duplicate, even after both are deleted.
        self.created: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        # Injected faults answered, per provider and kind (slow, storm_429, error, dropped): what a chaos run reports.
        self.injected: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        # VMs of one name alive at once, across every provider, and the most there ever were: an agent with two live
        # VMs at any moment (a failover that left the first behind) shows as a peak of 2 even after both are gone.
        self.live: dict[str, int] = defaultdict(int)
        self.peak_live: dict[str, int] = defaultdict(int)
        self._next_id: dict[str, int] = {
            "hetzner": 42_000_000,
            "digitalocean": 510_000_000,
            "action": 1_200_000,
            "firewall": 9_100_000,
            "firewall_rule": 0,
        }
        self._ip_block = 1
        self._ip_block_claim: socket.socket | None = None
        self._ip_next = 0

    def set_ip_block(self, port: int) -> None:
        """Take a /16 (127.<block>.x.y) no other simulator on this machine holds, starting from one the port picks.

        Checking a VM's address when it is handed out is not enough across processes: another simulator's VM may be
        given the same address and bind it when it boots, later. So each simulator holds a socket bound to
        127.<block>.255.1 (an address no VM is given) for its lifetime, the kernel's own exclusive claim on the
        block, released when the process ends however it ends.
        """
        with self.lock:
            for step in range(_IP_BLOCKS):
                block = 1 + (port + step) % _IP_BLOCKS
                claim = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                try:
                    claim.bind((f"127.{block}.255.1", BRIDGE_PORT))
                except OSError:
                    claim.close()
                    continue
                if self._ip_block_claim is not None:
                    self._ip_block_claim.close()
                self._ip_block, self._ip_block_claim = block, claim
                return
        raise RuntimeError(f"every one of the {_IP_BLOCKS} loopback address blocks is held by another simulator")

    # --- identifiers
    def next_int_id(self, kind: str) -> int:
        with self.lock:
            self._next_id[kind] += 1
            return self._next_id[kind]

    def next_uuid(self) -> str:
        with self.lock:
            return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def allocate_ip(self) -> str:
        """A loopback address no VM holds and where the bridge port is free (Linux routes all of 127/8 to lo)."""
        with self.lock:
            if self._ip_block_claim is None:
                self.set_ip_block(0)  # an in-process simulator, never given a port: still one block to itself
            in_use = {vm.ip for vm in self.vms.values()}
            for _ in range(250 * 250):
                n = self._ip_next
                self._ip_next = (self._ip_next + 1) % (250 * 250)  # third octet < 250: never the block's claim
                ip = f"127.{self._ip_block}.{n // 250}.{n % 250 + 2}"
                if ip not in in_use and _port_free(ip, BRIDGE_PORT):
                    return ip
        raise RuntimeError("no free loopback address left")

    # --- VMs
    def add_vm(self, vm: VM) -> None:
        with self.lock:
            self.vms[(vm.provider, str(vm.id))] = vm
            self.created[vm.provider][vm.name] += 1
            self.live[vm.name] += 1
            self.peak_live[vm.name] = max(self.peak_live[vm.name], self.live[vm.name])

    def get_vm(self, provider: str, vm_id: str) -> VM | None:
        with self.lock:
            return self.vms.get((provider, vm_id))

    def pop_vm(self, provider: str, vm_id: str) -> VM | None:
        with self.lock:
            vm = self.vms.pop((provider, vm_id), None)
            if vm is not None:
                self.live[vm.name] -= 1
            return vm

    def rename_vm(self, vm: VM, name: str) -> None:
        """A VM renamed in place (a warm pool VM taking its agent's name): it counts live under its new name, so two
        live VMs of one agent still show as a peak of 2; it was not created again."""
        with self.lock:
            if vm.name == name:
                return
            self.live[vm.name] -= 1
            vm.name = name
            self.live[name] += 1
            self.peak_live[name] = max(self.peak_live[name], self.live[name])

    def list_vms(self, provider: str) -> list[VM]:
        with self.lock:
            found = [vm for vm in self.vms.values() if vm.provider == provider]
        return sorted(found, key=lambda vm: (vm.created, str(vm.id)))

    # --- firewalls
    def add_firewall(self, firewall: Firewall) -> None:
        with self.lock:
            self.firewalls[(firewall.provider, str(firewall.id))] = firewall

    def get_firewall(self, provider: str, firewall_id: str) -> Firewall | None:
        with self.lock:
            return self.firewalls.get((provider, firewall_id))

    def pop_firewall(self, provider: str, firewall_id: str) -> Firewall | None:
        with self.lock:
            return self.firewalls.pop((provider, firewall_id), None)

    def list_firewalls(self, provider: str) -> list[Firewall]:
        with self.lock:
            found = [f for f in self.firewalls.values() if f.provider == provider]
        return sorted(found, key=lambda f: (f.created, str(f.id)))

    # --- actions
    def add_action(self, provider: str, command: str, resource_id: int | str, region: str = "") -> Action:
        action = Action(provider, self.next_int_id("action"), command, resource_id, time.time(), region=region)
        with self.lock:
            self.actions[(provider, action.id)] = action
        return action

    def finish_action(self, action: Action, status: str = "success") -> None:
        with self.lock:
            if action.finished is None:
                action.status = status
                action.finished = time.time()

    def get_action(self, provider: str, action_id: int) -> Action | None:
        with self.lock:
            return self.actions.get((provider, action_id))

    # --- counters
    def count_call(self, provider: str, key: str) -> None:
        with self.lock:
            self.calls[provider][key] += 1

    def count_rate_limited(self, provider: str) -> None:
        with self.lock:
            self.rate_limited[provider] += 1

    def count_injected(self, provider: str, kind: str) -> None:
        with self.lock:
            self.injected[provider][kind] += 1

    def zero_counters(self) -> None:
        with self.lock:
            self.calls.clear()
            self.rate_limited.clear()
            self.actions.clear()
            self.created.clear()
            self.injected.clear()
            self.peak_live.clear()
            self.peak_live.update({name: n for name, n in self.live.items() if n > 0})

    def snapshot_counters(self) -> tuple[dict[str, dict[str, int]], dict[str, int]]:
        with self.lock:
            return {p: dict(c) for p, c in self.calls.items()}, dict(self.rate_limited)

    def snapshot_created(self) -> dict[str, dict[str, int]]:
        with self.lock:
            return {p: dict(c) for p, c in self.created.items()}

    def snapshot_peak_live(self) -> dict[str, int]:
        with self.lock:
            return dict(self.peak_live)

    def snapshot_injected(self) -> dict[str, dict[str, int]]:
        with self.lock:
            return {p: dict(c) for p, c in self.injected.items()}


def _port_free(ip: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((ip, port))
        except OSError:
            return False
    return True
