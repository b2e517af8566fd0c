"""Vultr API v2 (`{url}/vultr/v2`): instances and account; an instance has exactly the fields of the API document.

Errors are `{"error": message, "status": code}`. Lists use cursor pagination: `per_page` (default 100, max 500) and
`cursor`; `meta.links.next`/`prev` are cursors to pass back (empty at the ends) and `meta.total` counts every match.
`user_data` arrives base64-encoded. A pending instance reports `main_ip` "0.0.0.0" until its address is assigned.
"""

from __future__ import annotations

import base64
import binascii
import re
import secrets
import time
from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute

from cloudsim import catalog
from cloudsim.firewalls import VultrFirewalls
from cloudsim.pipeline import ProviderAPI, Sim, json_body
from cloudsim.state import VM

USER_DATA_LIMIT = 64 * 1024
_MESSAGES = {
    400: "Bad Request",
    401: "Invalid API token.",
    403: "Forbidden",
    404: "Not found.",
    429: "Rate limit reached - please try your request again later.",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}
_HOSTNAME = re.compile(r"^[a-zA-Z0-9]([a-zA-Z0-9.-]{0,61}[a-zA-Z0-9])?$")


def iso(ts: float) -> str:
    return datetime.fromtimestamp(int(ts), UTC).isoformat()


def encode_cursor(offset: int) -> str:
    return base64.urlsafe_b64encode(f"next__{offset}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    prefix, _, offset = raw.partition("__")
    if prefix != "next" or not offset.isdigit():
        raise ValueError(cursor)
    return int(offset)


class VultrAPI(ProviderAPI):
    name = "vultr"
    prefix = "/vultr/v2"

    def __init__(self, sim: Sim) -> None:
        super().__init__(sim)
        self.firewalls = VultrFirewalls(self)

    def routes(self) -> list[BaseRoute]:
        return [
            *self.firewalls.routes(),
            self.route("/instances", "create", self.create_instance, ["POST"]),
            self.route("/instances", "list", self.list_instances, ["GET"]),
            self.route("/instances/{id}", "get", self.get_instance, ["GET"]),
            self.route("/instances/{id}", "update", self.update_instance, ["PATCH"]),
            self.route("/instances/{id}", "delete", self.delete_instance, ["DELETE"]),
            self.route("/account", "account", self.get_account, ["GET"]),
        ]

    def status(self, vm: VM) -> str:
        return "active" if vm.phase != "provisioning" else "pending"

    def server_status(self, vm: VM) -> str:
        return {"provisioning": "none", "starting": "installingbooting", "running": "ok"}[vm.phase]

    def error(self, status: int, message: str = "", code: str = "", details: Any = None) -> JSONResponse:
        return JSONResponse({"error": message or _MESSAGES.get(status, "Error"), "status": status}, status_code=status)

    # --- handlers
    async def create_instance(self, request: Request) -> Response:
        body = await json_body(request)
        region = body.get("region")
        if region not in catalog.VULTR_REGIONS:
            return self.error(400, "Invalid region chosen.")
        plan = body.get("plan")
        if plan not in catalog.VULTR_PLANS:
            return self.error(400, "Invalid plan chosen.")
        if region not in catalog.vultr_plan_locations(plan):
            return self.error(400, f"Plan {plan} is not available in {region}.")
        os_id = body.get("os_id")
        if os_id not in catalog.VULTR_OS:
            return self.error(400, "Invalid os_id chosen.")
        label = body.get("label") or ""
        hostname = body.get("hostname") or ""
        if not isinstance(label, str) or not isinstance(hostname, str):
            return self.error(400, "label and hostname must be strings.")
        if hostname and not _HOSTNAME.match(hostname):
            return self.error(400, "Invalid hostname.")
        tags = body.get("tags") or ([body["tag"]] if body.get("tag") else [])
        if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
            return self.error(400, "tags must be an array of strings.")
        user_data = ""
        if body.get("user_data"):
            try:
                raw = base64.b64decode(str(body["user_data"]), validate=True)
                user_data = raw.decode()
            except (binascii.Error, UnicodeDecodeError):
                return self.error(400, "Invalid user_data: it must be base64 encoded.")
            if len(raw) > USER_DATA_LIMIT:
                return self.error(400, "Invalid user_data: it must not exceed 64 KiB.")
        firewall_group_id = body.get("firewall_group_id") or ""
        if not isinstance(firewall_group_id, str) or (
            firewall_group_id and not self.firewalls.exists(firewall_group_id)
        ):
            return self.error(400, "Invalid firewall_group_id.")
        if self.sim.faults.capacity_blocks(self.name, region):
            return self.error(400, f"Plan {plan} is not available in {region}: this location is sold out.")

        state = self.sim.state
        with state.lock:
            vm_id = state.next_uuid()
            vm = VM(
                provider=self.name,
                id=vm_id,
                name=label,
                location=region,
                plan=plan,
                image=str(os_id),
                ip=state.allocate_ip(),
                vm_dir=self.sim.vm_dir(self.name, vm_id),
                created=time.time(),
                tags=list(dict.fromkeys(tags)),
                user_data=user_data,
            )
            vm.extra.update(
                hostname=hostname or f"vultr-guest-{vm_id[:8]}",
                os_id=os_id,
                ipv6=body.get("enable_ipv6") is True,
                firewall_group_id=firewall_group_id,
            )
            state.add_vm(vm)
        self.sim.booter.schedule(vm)
        rendered = self.render(vm)
        rendered["default_password"] = secrets.token_urlsafe(12)
        return JSONResponse({"instance": rendered}, status_code=202)

    async def list_instances(self, request: Request) -> Response:
        params = request.query_params
        vms = self.sim.state.list_vms(self.name)
        if params.get("label"):
            vms = [vm for vm in vms if vm.name == params["label"]]
        if params.get("tag"):
            vms = [vm for vm in vms if params["tag"] in vm.tags]
        if params.get("region"):
            vms = [vm for vm in vms if vm.location == params["region"]]
        if params.get("main_ip"):
            vms = [vm for vm in vms if self.main_ip(vm) == params["main_ip"]]
        try:
            per_page = min(max(1, int(params.get("per_page", 100))), 500)
            offset = decode_cursor(params["cursor"]) if params.get("cursor") else 0
        except (ValueError, binascii.Error, UnicodeDecodeError):
            return self.error(400, "Invalid cursor or per_page.")
        chunk = vms[offset : offset + per_page]
        links = {
            "next": encode_cursor(offset + per_page) if offset + per_page < len(vms) else "",
            "prev": encode_cursor(max(0, offset - per_page)) if offset > 0 else "",
        }
        return JSONResponse(
            {"instances": [self.render(vm) for vm in chunk], "meta": {"total": len(vms), "links": links}}
        )

    async def get_instance(self, request: Request) -> Response:
        vm = self.sim.state.get_vm(self.name, request.path_params["id"])
        if vm is None:
            return self.error(404, "Invalid instance-id.")
        return JSONResponse({"instance": self.render(vm)})

    async def update_instance(self, request: Request) -> Response:
        """Spec "Update Instance": every attribute optional, one not given keeps its value; `tags` replaces the list.

        cloudsim changes `label`, `tags` (or the deprecated `tag`) and `firewall_group_id` ("" detaches); a request
        for anything else (plan, OS, networks...) is refused with a 400 naming it rather than silently ignored.
        """
        body = await json_body(request)
        supported = {"label", "tags", "tag", "firewall_group_id"}
        unsupported = sorted(set(body) - supported)
        if unsupported:
            return self.error(400, f"cloudsim cannot change {', '.join(unsupported)} of an instance.")
        label = body.get("label")
        if label is not None and not isinstance(label, str):
            return self.error(400, "label must be a string.")
        tags = body["tags"] if "tags" in body else ([body["tag"]] if "tag" in body else None)
        if tags is not None and (not isinstance(tags, list) or not all(isinstance(t, str) for t in tags)):
            return self.error(400, "tags must be an array of strings.")
        group = body.get("firewall_group_id")
        if group is not None and (not isinstance(group, str) or (group and not self.firewalls.exists(group))):
            return self.error(400, "Invalid firewall_group_id.")
        state = self.sim.state
        with state.lock:
            vm = state.get_vm(self.name, request.path_params["id"])
            if vm is None:
                return self.error(404, "Invalid instance-id.")
            if label is not None:
                state.rename_vm(vm, label)
            if tags is not None:
                vm.tags = list(dict.fromkeys(tags))
            if group is not None:
                vm.extra["firewall_group_id"] = group
        return JSONResponse({"instance": self.render(vm)}, status_code=202)

    async def delete_instance(self, request: Request) -> Response:
        if self.sim.remove_vm(self.name, request.path_params["id"]) is None:
            return self.error(404, "Invalid instance-id.")
        return Response(status_code=204)

    async def get_account(self, _request: Request) -> Response:
        account = {
            "name": "cloudsim",
            "email": "cloudsim@example.com",
            "acls": ["manage_users", "subscriptions", "provisioning", "billing", "support", "abuse", "dns", "upgrade"],
            "balance": 0,
            "pending_charges": 0,
            "last_payment_date": "",
            "last_payment_amount": 0,
        }
        return JSONResponse({"account": account})

    # --- rendering
    def main_ip(self, vm: VM) -> str:
        return "0.0.0.0" if vm.phase == "provisioning" else vm.ip  # noqa: S104 - Vultr's "no address yet"

    def render(self, vm: VM) -> dict[str, Any]:
        vcpus, ram, disk, bandwidth = catalog.VULTR_PLANS[vm.plan]
        os_id = int(vm.extra.get("os_id", 0))
        return {
            "id": vm.id,
            "os": catalog.VULTR_OS.get(os_id, ""),
            "ram": ram,
            "disk": disk,
            "main_ip": self.main_ip(vm),
            "vcpu_count": vcpus,
            "region": vm.location,
            "plan": vm.plan,
            "date_created": iso(vm.created),
            "status": self.status(vm),
            "allowed_bandwidth": bandwidth,
            "netmask_v4": "255.0.0.0",
            "gateway_v4": "127.0.0.1" if vm.phase != "provisioning" else "0.0.0.0",  # noqa: S104
            "power_status": "running",
            "server_status": self.server_status(vm),
            "v6_networks": self.v6_networks(vm),
            "label": vm.name,
            "internal_ip": "",
            "kvm": f"https://my.vultr.com/subs/vps/novnc/api.php?data={vm.id}",
            "hostname": vm.extra.get("hostname", ""),
            "tag": vm.tags[0] if vm.tags else "",
            "tags": list(vm.tags),
            "os_id": os_id,
            "app_id": 0,
            "image_id": "",
            "firewall_group_id": vm.extra.get("firewall_group_id", ""),
            "features": ["ipv6"] if vm.extra.get("ipv6") else [],
        }

    def v6_networks(self, vm: VM) -> list[dict[str, Any]]:
        if not vm.extra.get("ipv6") or vm.phase == "provisioning":
            return []
        net = int(vm.created) % 65536
        return [{"network": f"2001:db8:{net:x}::", "main_ip": f"2001:db8:{net:x}::1", "network_size": 64}]
