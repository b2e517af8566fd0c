"""The `digitalocean` provider: one Droplet per agent, through python-digitalocean.

The SDK needs three things it cannot do by itself, so the adapter uses small subclasses of `Manager` and `Droplet`:
- the end point and token are passed to every SDK object explicitly (`BaseAPI.__init__` sets any keyword as an
  attribute, after reading `DIGITALOCEAN_END_POINT` from the environment), and `get_timeout()` is overridden: the
  SDK otherwise only knows a process-wide environment variable and defaults to no timeout at all.
- counting and status codes: GETs and DELETEs go through a per-object `requests.Session` but POSTs go through the
  module-level `requests.post`, so no session hook sees every request. The one place all of them pass is the private
  `BaseAPI.__perform_request`; the subclasses wrap it (it is name-mangled, hence `_BaseAPI__perform_request`).
- errors: the SDK turns every failure into `DataReadError(message)`, dropping the status and the rate-limit
  headers. The wrapper raises `_HTTPError` (status, error id, message, headers) for any non-2xx answer other than
  404 before the SDK reads it; 404 is left to the SDK's `NotFoundError`.
- null fields: `Droplet.create` posts `vpc_uuid: null` (and any other unset field as null), which the API refuses;
  the wrapper drops null fields from a POST body.
Each call builds fresh SDK objects: they carry per-call state (rate-limit attributes, round-robin token index) and
adapters run concurrently in worker threads.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

import digitalocean
import requests
from digitalocean.baseapi import GET, POST, BaseAPI

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
from activities.cloud.no_pools import NoPools
from activities.errors import (
    ProviderCapacityError,
    ProviderError,
    ProviderRateLimited,
    ProviderRejected,
    ProviderUnavailable,
)
from contracts.bootstrap import BRIDGE_PORT, BootstrapConfig
from contracts.firewall import FirewallRules, firewall_name
from contracts.models import CreateVMRequest
from contracts.regions import IMAGES, ProviderName, plan

DEFAULT_ENDPOINT = "https://api.digitalocean.com/v2/"
CURRENCY = "USD"  # DigitalOcean's prices are in US dollars
NO_POOLS = "no warm pools on digitalocean: its API cannot tag a running droplet"

# Tags allow letters, digits, ":", "-" and "_" (no "="). The bare agent tag marks every managed Droplet, so
# list_managed can filter server-side: DigitalOcean filters by exact tag name only.
_AGENT_TAG = f"{AGENT_LABEL}:"
_ACCOUNT_TAG = f"{ACCOUNT_LABEL}:"

_STATUS: dict[str, VMStatus] = {"new": "creating", "active": "running", "off": "stopped", "archive": "gone"}

# 422 messages that mean "not here, try elsewhere" rather than "your request is wrong".
_CAPACITY = re.compile(r"not available|unavailable|capacity|sold out|out of stock", re.IGNORECASE)


class _HTTPError(Exception):
    """A non-2xx answer, with what the SDK would have dropped. Never leaves this module."""

    def __init__(self, response: requests.Response) -> None:
        self.status = response.status_code
        self.headers: Mapping[str, str] = response.headers
        try:
            body = response.json()
        except ValueError:
            body = None
        body = body if isinstance(body, dict) else {}
        self.error_id = str(body.get("id", ""))
        self.message = str(body.get("message", "")) or response.reason or ""
        super().__init__(f"HTTP {self.status} {self.error_id}")


class _Observed:
    """Mixed into SDK classes: explicit timeout, request counting, and status-preserving errors."""

    lobstack_calls: ProviderCalls
    lobstack_timeout: tuple[float, float]

    def get_timeout(self) -> tuple[float, float]:
        return self.lobstack_timeout

    def _BaseAPI__perform_request(self, url: str, type: str = GET, params: dict[str, Any] | None = None) -> Any:
        self.lobstack_calls.record()
        if type == POST and params:
            # Droplet.create sends every optional field, null when unset; the API's are not nullable (`vpc_uuid: null`
            # is refused): unset means absent.
            params = {key: value for key, value in params.items() if value is not None}
        # The SDK's private, name-mangled request method (see the module docstring): not in our stub on purpose.
        perform = BaseAPI._BaseAPI__perform_request  # type: ignore[attr-defined]  # private, see above
        response: requests.Response = perform(self, url, type, params)
        if response.status_code >= 400 and response.status_code != 404:
            raise _HTTPError(response)
        return response


class _Manager(_Observed, digitalocean.Manager):
    pass


class _Droplet(_Observed, digitalocean.Droplet):
    pass


class _Firewall(_Observed, digitalocean.Firewall):
    pass


_SDK_ERRORS = (_HTTPError, digitalocean.Error, requests.RequestException)


class DigitalOceanProvider(NoPools, CatalogReads):
    no_pools_reason = NO_POOLS

    name: ProviderName = "digitalocean"

    def __init__(
        self,
        *,
        token: str,
        endpoint: str = DEFAULT_ENDPOINT,
        timeout_s: float = 30.0,
        connect_timeout_s: float = 5.0,
        page_size: int = 200,
        max_retry_after_s: float = 60.0,
        catalog_ttl_s: float = DEFAULT_CATALOG_TTL_S,
    ) -> None:
        self._token = token  # kept only to scrub it from any text that reaches an exception
        self._catalog: CatalogCache[list[Offer]] = CatalogCache(catalog_ttl_s)
        # The SDK joins relative paths onto the end point, so it must end with "/" ("…/v2/"), or "v2" is dropped.
        self.endpoint = endpoint if endpoint.endswith("/") else endpoint + "/"
        self.page_size = page_size
        self.max_retry_after_s = max_retry_after_s
        self.calls = ProviderCalls(self.name)
        self._timeout = (connect_timeout_s, timeout_s)

    def _sdk(self) -> dict[str, Any]:
        return {
            "token": self._token,
            "end_point": self.endpoint,
            "lobstack_calls": self.calls,
            "lobstack_timeout": self._timeout,
        }

    # --- CloudProvider --------------------------------------------------------------------------------------------

    def find(self, agent_id: str) -> VM | None:
        return pick(self._list(_AGENT_TAG + agent_id))

    def list_managed(self) -> list[VM]:
        return self._list(AGENT_LABEL)

    def get(self, vm_id: str) -> VM | None:
        droplet_id = _droplet_id(vm_id)
        try:
            droplet = _Droplet(id=droplet_id, **self._sdk())
            droplet.load()
        except digitalocean.NotFoundError:
            return None
        except _SDK_ERRORS as exc:
            raise self._error(exc, f"get droplet {droplet_id}") from exc
        return self._vm(droplet)

    def delete(self, vm_id: str) -> bool:
        droplet_id = _droplet_id(vm_id)
        try:
            _Droplet(id=droplet_id, **self._sdk()).destroy()
        except digitalocean.NotFoundError:
            return False
        except _SDK_ERRORS as exc:
            raise self._error(exc, f"delete droplet {droplet_id}") from exc
        return True

    def create(self, request: CreateVMRequest, bootstrap: BootstrapConfig) -> VM:
        user_data = vm_user_data(self.name, bootstrap)  # checked before any API call: it will not shrink on retry
        location = request.location or first_location(self.name, request.region)
        # Droplet names are not unique: the create activity's look-up is the only guard against a second Droplet.
        name = vm_name(request.agent_id)
        droplet = _Droplet(
            name=name,
            region=location,
            size_slug=plan(self.name, request.size),
            image=IMAGES[self.name],
            user_data=user_data,
            tags=[AGENT_LABEL, _AGENT_TAG + request.agent_id, _ACCOUNT_TAG + request.account_id],
            **self._sdk(),
        )
        try:
            droplet.create()
        except _SDK_ERRORS as exc:
            raise self._error(exc, f"create droplet {name} in {location}") from exc
        except (KeyError, IndexError, TypeError) as exc:
            # The Droplet exists but its answer was not the documented shape: the retry's look-up adopts it.
            raise ProviderUnavailable(f"digitalocean create droplet {name}: unexpected answer") from exc
        return VM(self.name, str(droplet.id), name, request.agent_id, "creating")

    def catalog(self) -> list[Offer]:
        """Every size in every region that sells it, with its monthly price (cached)."""
        return self._catalog.get(self._read_catalog)

    # --- FirewallProvider (activities/cloud/firewalls.py) -----------------------------------------------------------
    # Cloud Firewalls have no labels: the agent's is named like its Droplet and applies to the agent's tag, which the
    # Droplet carries from its create on, so it is protected from its first packet with no attach call.

    def ensure_firewall(self, agent_id: str, account_id: str, rules: FirewallRules) -> ProviderFirewall:
        found = self.find_firewalls(agent_id)
        if found:
            return found[0]
        name = firewall_name(agent_id)
        firewall = _Firewall(
            name=name,
            tags=[_AGENT_TAG + agent_id],
            inbound_rules=[
                digitalocean.InboundRule(
                    protocol=r.protocol, ports=r.port, sources=digitalocean.Sources(addresses=list(r.cidrs))
                )
                for r in rules.inbound
            ],
            outbound_rules=[
                digitalocean.OutboundRule(
                    protocol=r.protocol, ports=r.port, destinations=digitalocean.Destinations(addresses=list(r.cidrs))
                )
                for r in rules.outbound
            ],
            **self._sdk(),
        )
        try:
            firewall.create()
        except _SDK_ERRORS as exc:
            raise self._error(exc, f"create firewall {name}") from exc
        except (KeyError, IndexError, TypeError) as exc:
            # It may exist: the retry's look-up finds it by name and tag.
            raise ProviderUnavailable(f"digitalocean create firewall {name}: unexpected answer") from exc
        return ProviderFirewall(self.name, str(firewall.id), agent_id)

    def find_firewalls(self, agent_id: str) -> list[ProviderFirewall]:
        return [f for f in self.list_managed_firewalls() if f.agent_id == agent_id]

    def list_managed_firewalls(self) -> list[ProviderFirewall]:
        """Ours: named `lobstack-<agent_id>` and applied to that agent's tag; any other firewall is left alone."""
        try:
            # DigitalOcean filters firewalls by nothing: every page is read (the SDK follows links.pages.next).
            firewalls = _Manager(**self._sdk()).get_all_firewalls()
        except _SDK_ERRORS as exc:
            raise self._error(exc, "list firewalls") from exc
        found: list[ProviderFirewall] = []
        for firewall in firewalls:
            tags = firewall.tags or []
            agent_id = next((t.removeprefix(_AGENT_TAG) for t in tags if t.startswith(_AGENT_TAG)), "")
            if agent_id and firewall.name == firewall_name(agent_id):
                found.append(ProviderFirewall(self.name, str(firewall.id), agent_id))
        return found

    def delete_firewall(self, firewall_id: str) -> bool:
        try:
            _Firewall(id=firewall_id, **self._sdk()).destroy()
        except digitalocean.NotFoundError:
            return False
        except _SDK_ERRORS as exc:
            raise self._error(exc, f"delete firewall {firewall_id}") from exc
        return True

    # --- helpers --------------------------------------------------------------------------------------------------

    def _read_catalog(self) -> list[Offer]:
        try:
            # The SDK asks for 200 a page and follows links.pages.next itself.
            sizes = _Manager(**self._sdk()).get_all_sizes()
        except _SDK_ERRORS as exc:
            raise self._error(exc, "list sizes") from exc
        offers: list[Offer] = []
        for size in sizes:
            try:
                monthly = Decimal(str(size.price_monthly)).quantize(Decimal("0.01"))
            except InvalidOperation:
                continue  # a size without a price is not one we can sell
            if size.available is False:
                continue
            offers.extend(
                Offer(
                    provider=self.name,
                    plan=str(size.slug),
                    location=str(region),
                    vcpus=int(size.vcpus or 0),
                    memory_mb=int(size.memory or 0),
                    disk_gb=int(size.disk or 0),
                    monthly=Money(monthly, CURRENCY),
                )
                for region in size.regions or []
            )
        return offers

    def _list(self, tag: str) -> list[VM]:
        try:
            # The SDK follows links.pages.next itself; per_page set here wins over its default of 200.
            droplets = _Manager(**self._sdk()).get_all_droplets(params={"per_page": self.page_size}, tag_name=tag)
        except _SDK_ERRORS as exc:
            raise self._error(exc, f"list droplets (tag {tag})") from exc
        return [self._vm(droplet) for droplet in droplets]

    def _vm(self, droplet: digitalocean.Droplet) -> VM:
        tags = droplet.tags or []
        agent_id = next((t.removeprefix(_AGENT_TAG) for t in tags if t.startswith(_AGENT_TAG)), "")
        ip = droplet.ip_address or ""
        return VM(
            provider=self.name,
            vm_id=str(droplet.id),
            name=droplet.name or "",
            agent_id=agent_id,
            status=_STATUS.get(droplet.status or "", "creating"),
            address=f"http://{ip}:{BRIDGE_PORT}" if ip else "",
        )

    def _error(self, exc: Exception, what: str) -> ProviderError:
        """The one place that decides what a failure means, most specific first."""
        prefix = f"digitalocean {what}"
        if isinstance(exc, _HTTPError):
            detail = f"{prefix}: HTTP {exc.status} {exc.error_id or '-'}: {short(exc.message, self._token)}"
            if exc.status == 429:
                return ProviderRateLimited(detail, retry_after_s=self._retry_after(exc.headers))
            if exc.status in (401, 403):
                return ProviderRejected(detail)
            if exc.status == 422 and _CAPACITY.search(exc.message):
                return ProviderCapacityError(detail)
            if exc.status >= 500 or exc.status in (408, 409, 423):
                return ProviderUnavailable(detail)
            return ProviderRejected(detail)
        if isinstance(exc, digitalocean.TokenError):
            return ProviderRejected(f"{prefix}: no API token configured")
        if isinstance(exc, digitalocean.NotFoundError):
            return ProviderRejected(f"{prefix}: HTTP 404 not_found")
        if isinstance(exc, requests.Timeout):
            return ProviderUnavailable(f"{prefix}: timed out ({type(exc).__name__})")
        # Connection errors, and JSONReadError / DataReadError (a 2xx answer that is not the documented JSON).
        return ProviderUnavailable(f"{prefix}: {type(exc).__name__}")

    def _retry_after(self, headers: Mapping[str, str]) -> float:
        return retry_after_s(headers, "ratelimit-reset", self.max_retry_after_s)


def _droplet_id(vm_id: str) -> int:
    return numeric_id(vm_id, "a DigitalOcean droplet id")


__all__ = ["CURRENCY", "DEFAULT_ENDPOINT", "DigitalOceanProvider"]
