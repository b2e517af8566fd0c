"""The warm-pool half of `CloudProvider` for providers that have no pools (contracts.pool.POOL_PROVIDERS).

No pool VM is ever made there, so finding and listing answer "none", and making or adopting one is refused with the
provider's reason (`no_pools_reason`), before anything is minted or sent.
"""

from __future__ import annotations

from activities.cloud.base import VM
from activities.errors import ProviderRejected
from contracts.bootstrap import BootstrapConfig
from contracts.pool import PoolKey


class NoPools:
    no_pools_reason = "no warm pools on this provider"

    def create_pool_vm(self, key: PoolKey, slot: str, location: str, bootstrap: BootstrapConfig) -> VM:
        raise ProviderRejected(self.no_pools_reason)

    def find_pool_vm(self, slot: str) -> VM | None:
        return None

    def list_pool_vms(self) -> list[VM]:
        return []

    def adopt(self, vm_id: str, agent_id: str, account_id: str, firewall_id: str) -> VM:
        raise ProviderRejected(self.no_pools_reason)
