# python-digitalocean 1.17 ships no types: what activities/cloud/digitalocean.py and the tests use.
from typing import Any

from .baseapi import BaseAPI as BaseAPI
from .baseapi import DataReadError as DataReadError
from .baseapi import EndPointError as EndPointError
from .baseapi import Error as Error
from .baseapi import JSONReadError as JSONReadError
from .baseapi import NotFoundError as NotFoundError
from .baseapi import TokenError as TokenError

class Action(BaseAPI):
    id: int | None
    status: str | None

class Account(BaseAPI):
    status: str | None

class Droplet(BaseAPI):
    # None until the API answered (create or load).
    id: int | None
    name: str | None
    status: str | None
    region: Any
    size_slug: str | None
    image: Any
    user_data: str | None
    ip_address: str | None
    private_ip_address: str | None
    networks: Any
    tags: list[str]
    action_ids: list[int]
    @classmethod
    def get_object(cls, api_token: str, droplet_id: int | str) -> Droplet: ...
    def load(self) -> Droplet: ...
    def create(self, *args: Any, **kwargs: Any) -> None: ...
    def destroy(self) -> bool: ...
    def get_action(self, action_id: int) -> Action: ...

class Size(BaseAPI):
    slug: str | None
    memory: int | None
    vcpus: int | None
    disk: int | None
    transfer: float | None
    price_monthly: float | None
    price_hourly: float | None
    regions: list[str]
    available: bool | None

class _Targets:
    addresses: list[str]
    droplet_ids: list[int]
    load_balancer_uids: list[str]
    tags: list[str]
    def __init__(self, **kwargs: Any) -> None: ...

class Sources(_Targets): ...
class Destinations(_Targets): ...

class InboundRule:
    protocol: str
    ports: str
    sources: Sources
    def __init__(self, protocol: str = ..., ports: str = ..., sources: Any = ...) -> None: ...

class OutboundRule:
    protocol: str
    ports: str
    destinations: Destinations
    def __init__(self, protocol: str = ..., ports: str = ..., destinations: Any = ...) -> None: ...

class Firewall(BaseAPI):
    # None until the API answered (create or load).
    id: str | None
    name: str | None
    status: str | None
    droplet_ids: list[int] | None
    tags: list[str] | None
    inbound_rules: list[InboundRule]
    outbound_rules: list[OutboundRule]
    def load(self) -> Firewall: ...
    def create(self, *args: Any, **kwargs: Any) -> Firewall: ...
    def destroy(self) -> Any: ...

class Manager(BaseAPI):
    def get_all_firewalls(self) -> list[Firewall]: ...
    def get_account(self) -> Account: ...
    def get_all_sizes(self) -> list[Size]: ...
    def get_all_droplets(self, params: dict[str, Any] | None = ..., tag_name: str | None = ...) -> list[Droplet]: ...
