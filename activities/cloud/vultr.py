"""The `vultr` provider: one Vultr instance per agent, through Vultr API v2 with httpx.

There is no maintained Python SDK, so this adapter speaks the API itself (request fields from govultr's
`InstanceCreateReq`, cursor pagination from its `Meta`/`Links`). A sync `httpx.Client` suits it: adapters run in the
worker's thread pool like the SDK-based ones. Every request is counted by an httpx `request` event hook, so
requests that then time out are counted too.
"""

from __future__ import annotations

import base64
import ipaddress
import re
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import quote

import httpx

from activities.cloud.adapter_support import first_location, pick, short, vm_user_data
from activities.cloud.base import ACCOUNT_LABEL, AGENT_LABEL, VM, VMStatus, vm_name
from activities.cloud.calls import ProviderCalls
from activities.cloud.catalog import DEFAULT_CATALOG_TTL_S, CatalogCache, CatalogReads, Money, Offer
from activities.cloud.firewalls import ProviderFirewall
from activities.errors import (
    ProviderCapacityError,
    ProviderError,
    ProviderRateLimited,
    ProviderRejected,
    ProviderUnavailable,
)
from contracts.bootstrap import BRIDGE_PORT, BootstrapConfig
from contracts.firewall import FirewallRules, firewall_description
from contracts.models import CreateVMRequest
from contracts.pool import POOL_LABEL, POOL_SLOT_LABEL, PoolKey, pool_vm_name
from contracts.regions import IMAGES, ProviderName, plan

DEFAULT_ENDPOINT = "https://api.vultr.com/v2"
CURRENCY = "USD"  # Vultr's prices are in US dollars

# Tags are free text: `lobstack-agent=<id>` finds one agent's instance, the bare `lobstack-agent` every managed one
# (the list filter matches a whole tag only).
_AGENT_TAG = f"{AGENT_LABEL}="
_ACCOUNT_TAG = f"{ACCOUNT_LABEL}="
# A pool VM's tags: the bare `lobstack-pool` (every pool VM), its pool and its slot.
_POOL_TAG = f"{POOL_LABEL}="
_SLOT_TAG = f"{POOL_SLOT_LABEL}="

# Vultr answers 429 without any reset header; its limit is per second, so a short wait is enough.
DEFAULT_RETRY_AFTER_S = 1.0

# 4xx messages that mean "not here, try elsewhere" rather than "your request is wrong".
_CAPACITY = re.compile(r"not available|unavailable|capacity|sold out|out of stock", re.IGNORECASE)


class VultrProvider(CatalogReads):
    name: ProviderName = "vultr"

    def __init__(
        self,
        *,
        token: str,
        endpoint: str = DEFAULT_ENDPOINT,
        timeout_s: float = 30.0,
        connect_timeout_s: float = 5.0,
        page_size: int = 100,
        max_retry_after_s: float = 60.0,
        transport: httpx.BaseTransport | None = None,
        catalog_ttl_s: float = DEFAULT_CATALOG_TTL_S,
    ) -> None:
        self._token = token  # kept only to scrub it from any text that reaches an exception
        self._catalog: CatalogCache[list[Offer]] = CatalogCache(catalog_ttl_s)
        self.endpoint = endpoint.rstrip("/")
        self.page_size = page_size
        self.max_retry_after_s = max_retry_after_s
        self.calls = ProviderCalls(self.name)
        self._http = httpx.Client(
            base_url=self.endpoint + "/",
            headers={"Authorization": f"Bearer {token}", "User-Agent": "lobstack"},
            timeout=httpx.Timeout(timeout_s, connect=connect_timeout_s),
            event_hooks={"request": [self._count]},
            transport=transport,
        )

    def close(self) -> None:
        self._http.close()

    def _count(self, request: httpx.Request) -> None:
        self.calls.record()

    # --- CloudProvider --------------------------------------------------------------------------------------------

    def find(self, agent_id: str) -> VM | None:
        return pick(self._list(_AGENT_TAG + agent_id))

    def list_managed(self) -> list[VM]:
        return self._list(AGENT_LABEL)

    def get(self, vm_id: str) -> VM | None:
        response = self._request("GET", _instance_path(vm_id), f"get instance {vm_id}", missing_ok=True)
        if response.status_code == 404:
            return None
        return self._vm(_json(response).get("instance") or {})

    def delete(self, vm_id: str) -> bool:
        response = self._request("DELETE", _instance_path(vm_id), f"delete instance {vm_id}", missing_ok=True)
        return response.status_code != 404

    def create(self, request: CreateVMRequest, bootstrap: BootstrapConfig) -> VM:
        # Labels are not unique: the create activity's look-up is the only guard against a second instance.
        return self._create_instance(
            name=vm_name(request.agent_id),
            size=request.size,
            location=request.location or first_location(self.name, request.region),
            tags=_agent_tags(request.agent_id, request.account_id),
            firewall_id=request.firewall_id,
            bootstrap=bootstrap,
        )

    # --- warm pools -------------------------------------------------------------------------------------------------

    def create_pool_vm(self, key: PoolKey, slot: str, location: str, bootstrap: BootstrapConfig) -> VM:
        return self._create_instance(
            name=pool_vm_name(slot),
            size=key.size,
            location=location or first_location(self.name, key.region),
            tags=[POOL_LABEL, _POOL_TAG + key.pool_id, _SLOT_TAG + slot],
            firewall_id="",  # the agent's firewall comes with `adopt`; a pool VM holds no secret yet
            bootstrap=bootstrap,
        )

    def find_pool_vm(self, slot: str) -> VM | None:
        return pick(self._list(_SLOT_TAG + slot))

    def list_pool_vms(self) -> list[VM]:
        return self._list(POOL_LABEL)

    def adopt(self, vm_id: str, agent_id: str, account_id: str, firewall_id: str) -> VM:
        """One PATCH: label, tags (replaced wholesale: the pool's go) and firewall group; a retry sends the same."""
        name = vm_name(agent_id)
        body: dict[str, Any] = {"label": name, "tags": _agent_tags(agent_id, account_id)}
        if firewall_id:
            body["firewall_group_id"] = firewall_id
        what = f"adopt instance {vm_id} as {name}"
        response = self._request("PATCH", _instance_path(vm_id), what, missing_ok=True, json=body)
        if response.status_code == 404:
            raise ProviderRejected(f"vultr {what}: VM {vm_id} is gone")
        instance = _json(response).get("instance")
        if not isinstance(instance, dict) or not instance.get("id"):
            raise ProviderUnavailable(f"vultr {what}: answer without the instance")
        return self._vm(instance)

    def _create_instance(
        self, *, name: str, size: str, location: str, tags: list[str], firewall_id: str, bootstrap: BootstrapConfig
    ) -> VM:
        user_data = vm_user_data(self.name, bootstrap)  # checked before any API call: it will not shrink on retry
        body = {
            "region": location,
            "plan": plan(self.name, size),
            "os_id": int(IMAGES[self.name]),
            "label": name,
            "hostname": name,
            "tags": tags,
            "user_data": base64.b64encode(user_data.encode()).decode(),
            "backups": "disabled",
        }
        if firewall_id:
            # Attached at create: the instance never runs a moment without it.
            body["firewall_group_id"] = firewall_id
        response = self._request("POST", "instances", f"create instance {name} in {location}", json=body)
        instance = _json(response).get("instance")
        if not isinstance(instance, dict) or not instance.get("id"):
            # The instance may exist; the retry's look-up adopts it.
            raise ProviderUnavailable(f"vultr create instance {name}: answer without an instance id")
        return self._vm(instance)

    def catalog(self) -> list[Offer]:
        """Every plan in every region that sells it, with its monthly cost (cached)."""
        return self._catalog.get(self._read_catalog)

    # --- FirewallProvider (activities/cloud/firewalls.py) -----------------------------------------------------------
    # A firewall group has only a description (`lobstack-agent=<id>`) and filters inbound traffic only: its rules
    # admit the orchestrator and the gateway to the bridge port, and nothing else comes in. Outbound rules have no
    # place in a Vultr group (README "Firewalls").

    def ensure_firewall(self, agent_id: str, account_id: str, rules: FirewallRules) -> ProviderFirewall:
        found = self.find_firewalls(agent_id)
        fresh = not found
        if found:
            group = found[0]
        else:
            description = firewall_description(agent_id)
            response = self._request(
                "POST", "firewalls", f"create firewall group {description}", json={"description": description}
            )
            group_id = str((_json(response).get("firewall_group") or {}).get("id") or "")
            if not group_id:
                raise ProviderUnavailable(f"vultr create firewall group {description}: answer without an id")
            group = ProviderFirewall(self.name, group_id, agent_id)
        # Rules are added one by one: an attempt cut short is completed by the next one, never duplicated. A group
        # made just now has none to read.
        path = f"firewalls/{quote(group.firewall_id, safe='')}/rules"
        present = set() if fresh else self._rule_keys(path, group.firewall_id)
        for rule in rules.inbound:
            for cidr in rule.cidrs:
                network = ipaddress.ip_network(cidr)
                key = (rule.protocol, str(network.network_address), network.prefixlen, rule.port)
                if key in present:
                    continue
                body = {
                    "ip_type": f"v{network.version}",
                    "protocol": rule.protocol,
                    "subnet": str(network.network_address),
                    "subnet_size": network.prefixlen,
                    "port": rule.port,
                    "notes": "lobstack",
                }
                try:
                    self._request("POST", path, f"add a rule to firewall group {group.firewall_id}", json=body)
                except ProviderRejected:
                    # A refused rule will be refused again: the group goes, so "rejected" still means "made nothing".
                    self.delete_firewall(group.firewall_id)
                    raise
        return group

    def _rule_keys(self, path: str, group_id: str) -> set[tuple[str, str, int, str]]:
        data = _json(self._request("GET", path, f"list rules of firewall group {group_id}"))
        return {
            (str(r.get("protocol")), str(r.get("subnet")), int(r.get("subnet_size") or 0), str(r.get("port") or ""))
            for r in data.get("firewall_rules") or []
            if isinstance(r, dict)
        }

    def find_firewalls(self, agent_id: str) -> list[ProviderFirewall]:
        return [f for f in self.list_managed_firewalls() if f.agent_id == agent_id]

    def list_managed_firewalls(self) -> list[ProviderFirewall]:
        found: list[ProviderFirewall] = []
        params: dict[str, Any] = {"per_page": self.page_size}
        prefix = firewall_description("")
        while True:
            data = _json(self._request("GET", "firewalls", "list firewall groups", params=params))
            for group in data.get("firewall_groups") or []:
                description = str(group.get("description") or "") if isinstance(group, dict) else ""
                if description.startswith(prefix) and description != prefix:
                    found.append(
                        ProviderFirewall(self.name, str(group.get("id", "")), description.removeprefix(prefix))
                    )
            cursor = ((data.get("meta") or {}).get("links") or {}).get("next") or ""
            if not cursor:
                return found
            params = {**params, "cursor": cursor}

    def delete_firewall(self, firewall_id: str) -> bool:
        if not firewall_id:
            raise ProviderRejected("firewall_id: empty Vultr firewall group id")
        path = "firewalls/" + quote(firewall_id, safe="")
        response = self._request("DELETE", path, f"delete firewall group {firewall_id}", missing_ok=True)
        return response.status_code != 404

    # --- helpers --------------------------------------------------------------------------------------------------

    def _read_catalog(self) -> list[Offer]:
        offers: list[Offer] = []
        for item in self._pages("plans", "plans", "list plans"):
            try:
                monthly = Decimal(str(item.get("monthly_cost"))).quantize(Decimal("0.01"))
            except InvalidOperation:
                continue  # a plan without a price is not one we can sell
            offers.extend(
                Offer(
                    provider=self.name,
                    plan=str(item.get("id", "")),
                    location=str(location),
                    vcpus=int(item.get("vcpu_count") or 0),
                    memory_mb=int(item.get("ram") or 0),
                    disk_gb=int(item.get("disk") or 0),
                    monthly=Money(monthly, CURRENCY),
                )
                for location in item.get("locations") or []
            )
        return offers

    def _pages(self, path: str, key: str, what: str, **params: Any) -> list[dict[str, Any]]:
        """Every item of a cursor-paginated list (`meta.links.next` is the cursor to pass back, empty at the end)."""
        items: list[dict[str, Any]] = []
        query: dict[str, Any] = {**params, "per_page": self.page_size}
        while True:
            data = _json(self._request("GET", path, what, params=query))
            items.extend(item for item in data.get(key) or [] if isinstance(item, dict))
            cursor = ((data.get("meta") or {}).get("links") or {}).get("next") or ""
            if not cursor:
                return items
            query = {**query, "cursor": cursor}

    def _list(self, tag: str) -> list[VM]:
        vms: list[VM] = []
        params: dict[str, Any] = {"tag": tag, "per_page": self.page_size}
        while True:
            data = _json(self._request("GET", "instances", f"list instances (tag {tag})", params=params))
            vms.extend(self._vm(item) for item in data.get("instances") or [] if isinstance(item, dict))
            cursor = ((data.get("meta") or {}).get("links") or {}).get("next") or ""
            if not cursor:
                return vms
            params = {**params, "cursor": cursor}

    def _request(self, method: str, path: str, what: str, *, missing_ok: bool = False, **kwargs: Any) -> httpx.Response:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise self._error(exc, what) from exc
        if response.is_success or (missing_ok and response.status_code == 404):
            return response
        raise self._error(response, what)

    def _vm(self, instance: dict[str, Any]) -> VM:
        tags = [str(t) for t in instance.get("tags") or []]
        agent_id = _tag_value(tags, _AGENT_TAG)
        ip = str(instance.get("main_ip") or "")
        has_ip = ip not in ("", "0.0.0.0")  # noqa: S104 - Vultr's placeholder until an address is assigned
        return VM(
            provider=self.name,
            vm_id=str(instance.get("id", "")),
            name=str(instance.get("label") or ""),
            agent_id=agent_id,
            status=_status(instance),
            address=f"http://{ip}:{BRIDGE_PORT}" if has_ip else "",
            location=str(instance.get("region") or ""),
            slot=_tag_value(tags, _SLOT_TAG),
            pool_id=_tag_value(tags, _POOL_TAG),
        )

    def _error(self, failure: httpx.HTTPError | httpx.Response, what: str) -> ProviderError:
        """The one place that decides what a failure means, most specific first."""
        prefix = f"vultr {what}"
        if isinstance(failure, httpx.TimeoutException):
            return ProviderUnavailable(f"{prefix}: timed out ({type(failure).__name__})")
        if isinstance(failure, httpx.HTTPError):
            # Connection refused or lost, protocol errors: the request may or may not have been applied.
            return ProviderUnavailable(f"{prefix}: {type(failure).__name__}")
        status = failure.status_code
        message = _error_message(failure) or failure.reason_phrase
        detail = f"{prefix}: HTTP {status}: {short(message, self._token)}"
        if status == 429:
            return ProviderRateLimited(detail, retry_after_s=self._retry_after(failure.headers))
        if status in (401, 403):
            return ProviderRejected(detail)
        if status in (400, 409, 422) and _CAPACITY.search(message):
            return ProviderCapacityError(detail)
        if status >= 500 or status in (408, 423):
            return ProviderUnavailable(detail)
        return ProviderRejected(detail)

    def _retry_after(self, headers: httpx.Headers) -> float:
        try:
            retry_after = float(headers.get("retry-after", ""))
        except ValueError:
            return DEFAULT_RETRY_AFTER_S
        return min(max(retry_after, 0.5), self.max_retry_after_s)


def _agent_tags(agent_id: str, account_id: str) -> list[str]:
    """An agent's instance tags, the same whether it was created for the agent or adopted from a pool."""
    return [AGENT_LABEL, _AGENT_TAG + agent_id, _ACCOUNT_TAG + account_id]


def _tag_value(tags: list[str], prefix: str) -> str:
    return next((t.removeprefix(prefix) for t in tags if t.startswith(prefix)), "")


def _status(instance: dict[str, Any]) -> VMStatus:
    status = instance.get("status")
    if status == "active":
        if instance.get("power_status") == "stopped":
            return "stopped"
        # "active" comes before the OS has booted; server_status "ok" says it has (installingbooting, locked: not yet).
        return "running" if instance.get("server_status", "ok") == "ok" else "creating"
    if status == "suspended":
        return "stopped"
    return "creating"  # pending, resizing


def _instance_path(vm_id: str) -> str:
    if not vm_id:
        raise ProviderRejected("vm_id: empty Vultr instance id")
    return "instances/" + quote(vm_id, safe="")


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        data = response.json()
    except ValueError as exc:
        raise ProviderUnavailable(f"vultr: HTTP {response.status_code} answer is not JSON") from exc
    return data if isinstance(data, dict) else {}


def _error_message(response: httpx.Response) -> str:
    try:
        data = response.json()
    except ValueError:
        return ""
    return str(data.get("error", "")) if isinstance(data, dict) else ""


__all__ = ["CURRENCY", "DEFAULT_ENDPOINT", "DEFAULT_RETRY_AFTER_S", "VultrProvider"]
