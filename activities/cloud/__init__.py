"""VMs on the clouds: one adapter per provider behind the `CloudProvider` protocol (`base`), and the activities.

- `base`: `CloudProvider`, our own `VM` record, `VMStatus`;
- `activities`: `CloudActivities` (create, wait running, delete, look up) with the bootstrap credential minted inside;
- `local`, `hetzner`, `digitalocean`, `vultr`: the adapters; `providers`: building them from settings;
- `budget`, `calls`: API budgets and call counting; `userdata`, `adapter_support`: what a VM boots with;
- `catalog`: what each provider sells where and at which price (`Offer`, `Money`), cached per adapter;
- `firewalls`: each agent's provider firewall (`FirewallProvider`, `FirewallActivities`);
- `pool_vms`: warm pool VMs (`PoolVMActivities`: create by slot, adopt by an agent, delete, verify).

This `__init__` imports nothing: each adapter pulls in its own SDK only when it is used.
"""

__all__ = [
    "activities",
    "adapter_support",
    "base",
    "budget",
    "calls",
    "catalog",
    "digitalocean",
    "firewalls",
    "hetzner",
    "local",
    "pool_vms",
    "providers",
    "userdata",
    "vultr",
]
