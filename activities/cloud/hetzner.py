"""The `hetzner` provider: one Hetzner Cloud server per agent, through hcloud-python.

Two things are changed on hcloud's client, both on attributes it does not document (`Client._client` is its
`ClientBase`), and both checked at construction so an SDK upgrade that moves them fails loudly:
- its internal retries are switched off (`_retry_max_retries = 0`). hcloud retries `rate_limit_exceeded`,
  `conflict`, 502/504 and read timeouts up to 5 times with jittered backoff of up to 60 s, blind to
  `RateLimit-Reset`. Temporal owns retries here: every attempt is then visible in history, a 429 waits exactly
  the provider's reset, an activity's duration stays bounded by one request's timeout, and the API calls it reports
  are the calls it made.
- a transport adapter is mounted on its requests session to count every request and remember, per thread, the
  last response's status and headers: `APIException` carries only the API's error code, and a 429 needs
  `RateLimit-Reset`.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

import requests
from hcloud import APIException, Client, HCloudException
from hcloud.firewalls import BoundFirewall, Firewall, FirewallResource, FirewallRule
from hcloud.images import Image
from hcloud.locations import Location
from hcloud.server_types import ServerType
from hcloud.servers import BoundServer, Server
from requests.adapters import HTTPAdapter

from activities.cloud.adapter_support import (
    first_location,
    numeric_id,
    pick,
    retry_after_s,
    short,
    vm_user_data,
)
from activities.cloud.base import ACCOUNT_LABEL, AGENT_LABEL, VM, VMStatus, vm_name
from activities.cloud.calls import ProviderCalls
from activities.cloud.catalog import DEFAULT_CATALOG_TTL_S, CatalogCache, CatalogReads, Money, Offer
from activities.cloud.firewalls import ProviderFirewall
from activities.errors import (
    FirewallInUse,
    ProviderCapacityError,
    ProviderError,
    ProviderRateLimited,
    ProviderRejected,
    ProviderUnavailable,
    VMNameTaken,
)
from contracts.bootstrap import BRIDGE_PORT, BootstrapConfig
from contracts.firewall import FirewallRules, firewall_name
from contracts.models import CreateVMRequest
from contracts.pool import POOL_LABEL, POOL_SLOT_LABEL, PoolKey, pool_vm_name
from contracts.regions import IMAGES, ProviderName, plan

DEFAULT_ENDPOINT = "https://api.hetzner.cloud/v1"
# Hetzner prices every project in euros (`GET /pricing` says `"currency": "EUR"`); server types carry no currency.
CURRENCY = "EUR"

# Server.status -> ours. A migrating server keeps running; "unknown" is transient, so it keeps the caller waiting.
_STATUS: dict[str, VMStatus] = {
    "initializing": "creating",
    "starting": "creating",
    "rebuilding": "creating",
    "unknown": "creating",
    "running": "running",
    "migrating": "running",
    "stopping": "stopped",
    "off": "stopped",
    "deleting": "gone",
}

# Hetzner error codes (OpenAPI "Error Codes" table, plus the ones hcloud's retry policy names).
_CAPACITY_CODES = frozenset({"resource_unavailable", "placement_error", "resource_limit_exceeded"})
_REJECTED_CODES = frozenset(
    {
        "unauthorized",
        "forbidden",
        "token_readonly",
        "invalid_input",
        "json_error",
        "protected",
        "unsupported_error",
        "uniqueness_error",
        "not_found",
    }
)
_UNAVAILABLE_CODES = frozenset(
    {"conflict", "locked", "maintenance", "server_error", "service_error", "timeout", "bad_gateway", "unavailable"}
)


@dataclass(frozen=True)
class _Response:
    status: int
    headers: Mapping[str, str]


class _ObservingAdapter(HTTPAdapter):
    """Counts each request before it is sent and keeps the last response's status and headers for this thread."""

    def __init__(self, calls: ProviderCalls) -> None:
        super().__init__()
        self._calls = calls
        self._local = threading.local()

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]  # all passed on
        self._calls.record()
        self._local.last = None
        response = super().send(request, **kwargs)
        self._local.last = _Response(response.status_code, response.headers)
        return response

    def last(self) -> _Response | None:
        return getattr(self._local, "last", None)


class HetznerProvider(CatalogReads):
    name: ProviderName = "hetzner"

    def __init__(
        self,
        *,
        token: str,
        endpoint: str = DEFAULT_ENDPOINT,
        timeout_s: float = 30.0,
        connect_timeout_s: float = 5.0,
        page_size: int = 50,
        max_retry_after_s: float = 60.0,
        catalog_ttl_s: float = DEFAULT_CATALOG_TTL_S,
    ) -> None:
        self._token = token  # kept only to scrub it from any text that reaches an exception
        self.endpoint = endpoint.rstrip("/")
        self.page_size = page_size
        self.max_retry_after_s = max_retry_after_s
        self.calls = ProviderCalls(self.name)
        self._catalog: CatalogCache[list[Offer]] = CatalogCache(catalog_ttl_s)
        self._client = Client(
            token=token,
            api_endpoint=self.endpoint,
            application_name="lobstack",
            timeout=(connect_timeout_s, timeout_s),
        )
        base = self._client._client
        if not hasattr(base, "_retry_max_retries") or not isinstance(getattr(base, "_session", None), requests.Session):
            raise RuntimeError("hcloud's ClientBase changed: review HetznerProvider's retry and counting hooks")
        base._retry_max_retries = 0
        self._http = _ObservingAdapter(self.calls)
        base._session.mount("https://", self._http)
        base._session.mount("http://", self._http)

    # --- CloudProvider --------------------------------------------------------------------------------------------

    def find(self, agent_id: str) -> VM | None:
        return pick(self._list(f"{AGENT_LABEL}={agent_id}"))

    def list_managed(self) -> list[VM]:
        return self._list(AGENT_LABEL)

    def get(self, vm_id: str) -> VM | None:
        server_id = _server_id(vm_id)
        try:
            return self._vm(self._client.servers.get_by_id(server_id))
        except (HCloudException, requests.RequestException) as exc:
            if _not_found(exc):
                return None
            raise self._error(exc, f"get server {server_id}") from exc

    def delete(self, vm_id: str) -> bool:
        server_id = _server_id(vm_id)
        try:
            self._client.servers.delete(Server(id=server_id))
        except (HCloudException, requests.RequestException) as exc:
            if _not_found(exc):
                return False
            raise self._error(exc, f"delete server {server_id}") from exc
        return True

    def create(self, request: CreateVMRequest, bootstrap: BootstrapConfig) -> VM:
        return self._create_server(
            name=vm_name(request.agent_id),
            size=request.size,
            location=request.location or first_location(self.name, request.region),
            labels={AGENT_LABEL: request.agent_id, ACCOUNT_LABEL: request.account_id},
            firewall_id=request.firewall_id,
            bootstrap=bootstrap,
        )

    # --- warm pools -------------------------------------------------------------------------------------------------

    def create_pool_vm(self, key: PoolKey, slot: str, location: str, bootstrap: BootstrapConfig) -> VM:
        return self._create_server(
            name=pool_vm_name(slot),
            size=key.size,
            location=location or first_location(self.name, key.region),
            labels={POOL_LABEL: key.pool_id, POOL_SLOT_LABEL: slot},
            firewall_id="",  # the agent's firewall comes with `adopt`; a pool VM holds no secret yet
            bootstrap=bootstrap,
        )

    def find_pool_vm(self, slot: str) -> VM | None:
        return pick(self._list(f"{POOL_SLOT_LABEL}={slot}"))

    def list_pool_vms(self) -> list[VM]:
        return self._list(POOL_LABEL)

    def adopt(self, vm_id: str, agent_id: str, account_id: str, firewall_id: str) -> VM:
        """PUT /servers/{id} (name and labels, replaced wholesale), then the firewall's apply_to_resources unless the
        server already lists it: both are no-ops on a retry after success."""
        server_id = _server_id(vm_id)
        name = vm_name(agent_id)
        what = f"adopt server {server_id} as {name}"
        try:
            server = self._client.servers.update(
                Server(id=server_id), name=name, labels={AGENT_LABEL: agent_id, ACCOUNT_LABEL: account_id}
            )
        except (HCloudException, requests.RequestException) as exc:
            if _not_found(exc):
                raise ProviderRejected(f"hetzner {what}: VM {vm_id} is gone") from exc
            if isinstance(exc, APIException) and exc.code == "uniqueness_error":
                raise VMNameTaken(f"hetzner {what}: the name is already used by another server") from exc
            raise self._error(exc, what) from exc
        if firewall_id and not _has_firewall(server, _firewall_id(firewall_id)):
            self._apply_firewall(_firewall_id(firewall_id), server_id)
        return self._vm(server)

    def _apply_firewall(self, fw_id: int, server_id: int) -> None:
        what = f"apply firewall {fw_id} to server {server_id}"
        try:
            self._client.firewalls.apply_to_resources(
                Firewall(id=fw_id), [FirewallResource(type="server", server=Server(id=server_id))]
            )
        except (HCloudException, requests.RequestException) as exc:
            if isinstance(exc, APIException) and exc.code == "firewall_already_applied":
                return  # an earlier attempt applied it after the server was read
            if isinstance(exc, APIException) and exc.code == "firewall_resource_not_found":
                raise ProviderRejected(f"hetzner {what}: VM {server_id} is gone") from exc
            if _not_found(exc):
                raise ProviderRejected(f"hetzner {what}: the firewall is gone") from exc
            raise self._error(exc, what) from exc

    def _create_server(
        self,
        *,
        name: str,
        size: str,
        location: str,
        labels: dict[str, str],
        firewall_id: str,
        bootstrap: BootstrapConfig,
    ) -> VM:
        user_data = vm_user_data(self.name, bootstrap)  # checked before any API call: it will not shrink on retry
        what = f"create server {name} in {location}"
        try:
            response = self._client.servers.create(
                name=name,
                server_type=ServerType(name=plan(self.name, size)),
                image=Image(name=IMAGES[self.name]),
                location=Location(name=location),
                user_data=user_data,
                labels=labels,
                # Applied at create: the VM never runs a moment without it.
                firewalls=[Firewall(id=_firewall_id(firewall_id))] if firewall_id else None,
            )
        except (HCloudException, requests.RequestException) as exc:
            if isinstance(exc, APIException) and exc.code == "uniqueness_error":
                # Names are unique per project: the create activity looks for the server that holds it.
                raise VMNameTaken(f"hetzner {what}: the name is already used (uniqueness_error)") from exc
            raise self._error(exc, what) from exc
        return self._vm(response.server)

    def catalog(self) -> list[Offer]:
        """Every server type in every location that sells it, with its monthly price before VAT (cached)."""
        return self._catalog.get(self._read_catalog)

    # --- FirewallProvider (activities/cloud/firewalls.py) -----------------------------------------------------------

    def ensure_firewall(self, agent_id: str, account_id: str, rules: FirewallRules) -> ProviderFirewall:
        # Create first, look up only when refused: names are unique per project, so one call in the usual case.
        name = firewall_name(agent_id)
        labels = {AGENT_LABEL: agent_id, ACCOUNT_LABEL: account_id}
        try:
            response = self._client.firewalls.create(
                name=name,
                rules=[_rule(rule.direction, rule.protocol, rule.port, list(rule.cidrs)) for rule in rules.rules],
                labels=labels,  # type: ignore[arg-type]  # hcloud 2.27 annotates it as str, sends the dict
            )
        except (HCloudException, requests.RequestException) as exc:
            if isinstance(exc, APIException) and exc.code == "uniqueness_error":
                # An earlier attempt (or an earlier VM of the agent) made it: that one is ours, labelled so.
                made = self.find_firewalls(agent_id)
                if made:
                    return made[0]
            raise self._error(exc, f"create firewall {name}") from exc
        return self._firewall(response.firewall)

    def find_firewalls(self, agent_id: str) -> list[ProviderFirewall]:
        return self._list_firewalls(f"{AGENT_LABEL}={agent_id}")

    def list_managed_firewalls(self) -> list[ProviderFirewall]:
        return self._list_firewalls(AGENT_LABEL)

    def delete_firewall(self, firewall_id: str) -> bool:
        fw_id = _firewall_id(firewall_id)
        try:
            self._client.firewalls.delete(Firewall(id=fw_id))
        except (HCloudException, requests.RequestException) as exc:
            if _not_found(exc):
                return False
            if isinstance(exc, APIException) and exc.code == "resource_in_use":
                raise FirewallInUse(
                    f"hetzner delete firewall {fw_id}: still applied to a server (resource_in_use)"
                ) from exc
            raise self._error(exc, f"delete firewall {fw_id}") from exc
        return True

    def _list_firewalls(self, selector: str) -> list[ProviderFirewall]:
        found: list[ProviderFirewall] = []
        page: int | None = 1
        try:
            while page:
                result = self._client.firewalls.get_list(label_selector=selector, page=page, per_page=self.page_size)
                found.extend(self._firewall(firewall) for firewall in result.firewalls)
                meta = result.meta
                page = meta.pagination.next_page if meta and meta.pagination else None
        except (HCloudException, requests.RequestException) as exc:
            raise self._error(exc, f"list firewalls ({selector}, page {page})") from exc
        return found

    def _firewall(self, firewall: BoundFirewall) -> ProviderFirewall:
        labels = firewall.labels or {}
        return ProviderFirewall(self.name, str(firewall.id), labels.get(AGENT_LABEL, ""))

    # --- helpers --------------------------------------------------------------------------------------------------

    def _read_catalog(self) -> list[Offer]:
        try:
            server_types = self._client.server_types.get_all()  # one page: Hetzner sells far fewer than 50
        except (HCloudException, requests.RequestException) as exc:
            raise self._error(exc, "list server types") from exc
        offers: list[Offer] = []
        for server_type in server_types:
            # Sold where it is listed as available and not deprecated; priced per location.
            sold = {
                where.location.name
                for where in server_type.locations or []
                if where.available is not False and where.deprecation is None
            }
            for price in server_type.prices or []:
                monthly = _net(price.get("price_monthly"))
                if price.get("location") not in sold or monthly is None:
                    continue
                offers.append(
                    Offer(
                        provider=self.name,
                        plan=str(server_type.name),
                        location=str(price["location"]),
                        vcpus=int(server_type.cores or 0),
                        memory_mb=round(float(server_type.memory or 0) * 1024),
                        disk_gb=int(server_type.disk or 0),
                        monthly=Money(monthly, CURRENCY),
                    )
                )
        return offers

    def _list(self, selector: str) -> list[VM]:
        vms: list[VM] = []
        page: int | None = 1
        try:
            while page:
                servers, meta = self._client.servers.get_list(
                    label_selector=selector, page=page, per_page=self.page_size
                )
                vms.extend(self._vm(server) for server in servers)
                page = meta.pagination.next_page if meta and meta.pagination else None
        except (HCloudException, requests.RequestException) as exc:
            raise self._error(exc, f"list servers ({selector}, page {page})") from exc
        return vms

    def _vm(self, server: BoundServer) -> VM:
        labels = server.labels or {}
        public = server.public_net
        ip = public.ipv4.ip if public is not None and public.ipv4 is not None else ""
        location = server.location.name if server.location is not None else None
        return VM(
            provider=self.name,
            vm_id=str(server.id),
            name=server.name or "",
            agent_id=labels.get(AGENT_LABEL, ""),
            status=_STATUS.get(server.status or "", "creating"),
            address=f"http://{ip}:{BRIDGE_PORT}" if ip else "",
            location=location or "",
            slot=labels.get(POOL_SLOT_LABEL, ""),
            pool_id=labels.get(POOL_LABEL, ""),
        )

    def _error(self, exc: Exception, what: str) -> ProviderError:
        """The one place that decides what a failure means: most specific first (error code, then HTTP status)."""
        prefix = f"hetzner {what}"
        if isinstance(exc, requests.Timeout):
            return ProviderUnavailable(f"{prefix}: timed out ({type(exc).__name__})")
        if isinstance(exc, requests.RequestException):
            return ProviderUnavailable(f"{prefix}: {type(exc).__name__}")
        if not isinstance(exc, APIException):
            return ProviderUnavailable(f"{prefix}: {type(exc).__name__}")
        last = self._http.last()
        # `code` is the API's error code, or the HTTP status when the body carried no error object.
        status = last.status if last is not None else (exc.code if isinstance(exc.code, int) else 0)
        code = exc.code if isinstance(exc.code, str) else ""
        detail = f"{prefix}: HTTP {status} {code or '-'}: {short(str(exc.message), self._token)}"
        if code == "rate_limit_exceeded" or status == 429:
            headers = last.headers if last is not None else {}
            return ProviderRateLimited(detail, retry_after_s=self._retry_after(headers))
        if code in _CAPACITY_CODES:
            return ProviderCapacityError(detail)
        if code in _REJECTED_CODES:
            return ProviderRejected(detail)
        if code in _UNAVAILABLE_CODES or status >= 500 or status in (0, 408, 409, 423):
            return ProviderUnavailable(detail)
        return ProviderRejected(detail)

    def _retry_after(self, headers: Mapping[str, str]) -> float:
        # RateLimit-Reset is when all 3600 requests are back; the next one is back a second after a 429.
        return retry_after_s(
            headers,
            "RateLimit-Reset",
            self.max_retry_after_s,
            refill_headers=("RateLimit-Limit", "RateLimit-Remaining"),
        )


def _net(price: object) -> Decimal | None:
    """A Hetzner price object's net amount (`{"net": "4.3500000000", "gross": ...}`), to the cent."""
    if not isinstance(price, Mapping):
        return None
    try:
        return Decimal(str(price.get("net"))).quantize(Decimal("0.01"))
    except InvalidOperation:
        return None


def _server_id(vm_id: str) -> int:
    return numeric_id(vm_id, "a Hetzner server id")


def _firewall_id(firewall_id: str) -> int:
    return numeric_id(firewall_id, "a Hetzner firewall id")


def _rule(direction: str, protocol: str, port: str, cidrs: list[str]) -> FirewallRule:
    """Hetzner's rule: `source_ips` for inbound, `destination_ips` for outbound."""
    if direction == "in":
        return FirewallRule(direction="in", protocol=protocol, source_ips=cidrs, port=port, description="lobstack")
    return FirewallRule(
        direction="out", protocol=protocol, source_ips=[], destination_ips=cidrs, port=port, description="lobstack"
    )


def _has_firewall(server: BoundServer, fw_id: int) -> bool:
    public = server.public_net
    return public is not None and any(applied.firewall.id == fw_id for applied in public.firewalls or [])


def _not_found(exc: Exception) -> bool:
    return isinstance(exc, APIException) and exc.code in ("not_found", 404)


__all__ = ["CURRENCY", "DEFAULT_ENDPOINT", "HetznerProvider"]
