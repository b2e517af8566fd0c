"""DigitalOcean API v2 (`{url}/digitalocean/v2/`): droplets, actions, account, shaped like digitalocean/openapi.

Errors are `{"id", "message", "request_id"}` (specification/description.md "HTTP Statuses"); python-digitalocean's
`get_data` raises NotFoundError on any 404, and `DataReadError(message)` for other non-2xx bodies, which it reads as
`[data[m] for m in ("id", "message") if m in data][1]`, so every error body here carries both keys. Paths are served
with and without the trailing slash, because the SDK asks for `droplets/` and `account/`.
"""

from __future__ import annotations

import re
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute

from cloudsim import catalog
from cloudsim.firewalls import DigitalOceanFirewalls
from cloudsim.pipeline import Handler, ProviderAPI, json_body
from cloudsim.state import VM, Action

USER_DATA_LIMIT = 64 * 1024
JSON_CONTENT_TYPE = "application/json; charset=utf-8"
_IDS = {
    400: "bad_request",
    401: "Unauthorized",
    403: "forbidden",
    404: "not_found",
    409: "conflict",
    422: "unprocessable_entity",
    429: "too_many_requests",
    500: "server_error",
    502: "bad_gateway",
    503: "service_unavailable",
    504: "gateway_timeout",
}
_MESSAGES = {
    401: "Unable to authenticate you",
    404: "The resource you were accessing could not be found.",
    429: "API Rate limit exceeded.",
    500: "Server was unable to give you a response.",
    502: "Bad gateway.",
    503: "Service is temporarily unavailable. Please try again later.",
    504: "Gateway timeout.",
}
_NAME = re.compile(r"^[a-zA-Z0-9]([a-zA-Z0-9.-]{0,253}[a-zA-Z0-9])?$")
_TAG = re.compile(r"^[a-zA-Z0-9_:\-]{1,255}$")


def iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(int(ts), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class DigitalOceanAPI(ProviderAPI):
    name = "digitalocean"
    prefix = "/digitalocean/v2"

    def routes(self) -> list[BaseRoute]:
        table: list[tuple[str, str, Handler, str]] = [
            ("/droplets", "create", self.create_droplet, "POST"),
            ("/droplets", "list", self.list_droplets, "GET"),
            ("/droplets/{id}", "get", self.get_droplet, "GET"),
            ("/droplets/{id}", "delete", self.delete_droplet, "DELETE"),
            ("/actions/{action_id}", "action", self.get_action, "GET"),
            ("/droplets/{id}/actions", "action", self.list_droplet_actions, "GET"),
            ("/droplets/{id}/actions/{action_id}", "action", self.get_action, "GET"),
            ("/account", "account", self.get_account, "GET"),
        ]
        routes: list[BaseRoute] = DigitalOceanFirewalls(self).routes()
        for path, key, handler, method in table:
            routes.append(self.route(path, key, handler, [method]))
            routes.append(self.route(path + "/", key, handler, [method]))
        return routes

    def status(self, vm: VM) -> str:
        return "active" if vm.phase == "running" else "new"

    def error(self, status: int, message: str = "", code: str = "", details: Any = None) -> JSONResponse:
        body = {
            "id": code or _IDS.get(status, "server_error" if status >= 500 else "bad_request"),
            "message": message or _MESSAGES.get(status, "The request could not be processed."),
            "request_id": str(uuid.uuid4()),
        }
        return JSONResponse(body, status_code=status)

    def unprocessable(self, message: str) -> JSONResponse:
        return self.error(422, message, "unprocessable_entity")

    # --- handlers
    async def create_droplet(self, request: Request) -> Response:
        body = await json_body(request)
        name = body.get("name")
        if not isinstance(name, str) or not _NAME.match(name):
            return self.unprocessable(
                "Name is invalid. Only valid hostname characters are allowed (a-z, A-Z, 0-9, . and -)."
            )
        region = body.get("region")
        if region not in catalog.DO_REGIONS:
            return self.unprocessable("You specified an invalid region for Droplet creation.")
        size = body.get("size")
        if size not in catalog.DO_SIZES:
            return self.unprocessable("You specified an invalid size for Droplet creation.")
        if region not in catalog.do_size_regions(size):
            return self.unprocessable(f"Size {size} is not available in {region}.")
        image = body.get("image")
        image_slug = _image_slug(image)
        if image_slug is None:
            return self.unprocessable("You specified an invalid image for Droplet creation.")
        if "vpc_uuid" in body and not isinstance(body["vpc_uuid"], str):
            # The spec's vpc_uuid is a string, not nullable: leave it out for the region's default VPC.
            return self.unprocessable("vpc_uuid must be a string: the UUID of a VPC in the region.")
        tags = body.get("tags") or []
        if not isinstance(tags, list) or not all(isinstance(t, str) and _TAG.match(t) for t in tags):
            return self.unprocessable("Tag names may only contain letters, numbers, colons, dashes, and underscores.")
        user_data = body.get("user_data") or ""
        if not isinstance(user_data, str):
            return self.unprocessable("user_data must be a string.")
        if len(user_data.encode()) > USER_DATA_LIMIT:
            return self.unprocessable("user_data is too long. The maximum size is 64 KiB.")
        if self.sim.faults.capacity_blocks(self.name, region):
            return self.unprocessable(
                f"Droplet creation in {region} is temporarily unavailable. Please select a different region."
            )

        state = self.sim.state
        with state.lock:
            vm_id = state.next_int_id("digitalocean")
            vm = VM(
                provider=self.name,
                id=vm_id,
                name=name,
                location=region,
                plan=size,
                image=image_slug,
                ip=state.allocate_ip(),
                vm_dir=self.sim.vm_dir(self.name, vm_id),
                created=time.time(),
                tags=list(dict.fromkeys(tags)),
                user_data=user_data,
            )
            action = state.add_action(self.name, "create", vm_id, region=region)
            action.status = "in-progress"
            vm.extra.update(
                boot_actions=[action], actions=[action.id], ipv6=bool(body.get("ipv6")), vpc_uuid=body.get("vpc_uuid")
            )
            state.add_vm(vm)
        self.sim.booter.schedule(vm)
        link = {"id": action.id, "rel": "create", "href": self._url(request, f"/actions/{action.id}")}
        return JSONResponse({"droplet": self.render(vm), "links": {"actions": [link]}}, status_code=202)

    async def list_droplets(self, request: Request) -> Response:
        params = request.query_params
        if "tag_name" in params and ("name" in params or "type" in params):
            # Spec: `tag_name` "can not be combined with `name` or `type`".
            return self.unprocessable("tag_name can not be combined with name or type.")
        vms = self.sim.state.list_vms(self.name)
        if params.get("tag_name"):
            vms = [vm for vm in vms if params["tag_name"] in vm.tags]
        if params.get("name"):
            # Spec: "returning only exact matches. It is case-insensitive".
            vms = [vm for vm in vms if vm.name.lower() == params["name"].lower()]
        try:
            page = max(1, int(params.get("page", 1)))
            per_page = min(max(1, int(params.get("per_page", 20))), 200)
        except ValueError:
            return self.error(400, "page and per_page must be integers")
        total = len(vms)
        last = max(1, -(-total // per_page))
        chunk = vms[(page - 1) * per_page : page * per_page]
        pages: dict[str, str] = {}
        if page > 1:
            pages["first"] = str(request.url.include_query_params(page=1, per_page=per_page))
            pages["prev"] = str(request.url.include_query_params(page=page - 1, per_page=per_page))
        if page < last:
            pages["next"] = str(request.url.include_query_params(page=page + 1, per_page=per_page))
            pages["last"] = str(request.url.include_query_params(page=last, per_page=per_page))
        return JSONResponse(
            {"droplets": [self.render(vm) for vm in chunk], "links": {"pages": pages}, "meta": {"total": total}}
        )

    async def get_droplet(self, request: Request) -> Response:
        vm = self.sim.state.get_vm(self.name, request.path_params["id"])
        if vm is None:
            return self.error(404)
        return JSONResponse({"droplet": self.render(vm)})

    async def delete_droplet(self, request: Request) -> Response:
        if self.sim.remove_vm(self.name, request.path_params["id"]) is None:
            return self.error(404)
        # Spec: "the response body is empty. This response has content-type set."
        return Response(status_code=204, media_type=JSON_CONTENT_TYPE)

    async def get_action(self, request: Request) -> Response:
        raw = request.path_params["action_id"]
        action = self.sim.state.get_action(self.name, int(raw)) if raw.isdigit() else None
        if action is None:
            return self.error(404)
        return JSONResponse({"action": self.render_action(action)})

    async def list_droplet_actions(self, request: Request) -> Response:
        vm = self.sim.state.get_vm(self.name, request.path_params["id"])
        if vm is None:
            return self.error(404)
        actions = [a for a in (self.sim.state.get_action(self.name, i) for i in vm.extra.get("actions", [])) if a]
        return JSONResponse(
            {
                "actions": [self.render_action(a) for a in actions],
                "links": {"pages": {}},
                "meta": {"total": len(actions)},
            }
        )

    async def get_account(self, _request: Request) -> Response:
        account = {
            "droplet_limit": 1000,
            "floating_ip_limit": 3,
            "reserved_ip_limit": 3,
            "volume_limit": 100,
            "email": "cloudsim@example.com",
            "name": "cloudsim",
            "uuid": "b6fr89dbf6d9156cace5f3c78dc9851d957381ef",
            "email_verified": True,
            "status": "active",
            "status_message": "",
            "team": {"uuid": "5df3e3004a17e242b7c20ca6c9fc25b701a47ece", "name": "cloudsim"},
        }
        return JSONResponse({"account": account})

    # --- rendering
    def _url(self, request: Request, path: str) -> str:
        return f"{request.url.scheme}://{request.url.netloc}{self.prefix}{path}"

    def _region(self, slug: str) -> dict[str, Any]:
        return {
            "name": catalog.DO_REGIONS[slug],
            "slug": slug,
            "features": ["backups", "ipv6", "metadata", "install_agent", "storage", "image_transfer"],
            "available": True,
            "sizes": catalog.do_region(slug)["sizes"],
        }

    def render(self, vm: VM) -> dict[str, Any]:
        memory, vcpus, disk, price = catalog.DO_SIZES[vm.plan]
        image_id, image_name, distribution = catalog.DO_IMAGES[vm.image]
        v4: list[dict[str, str]] = []
        v6: list[dict[str, Any]] = []
        if vm.phase == "running":
            # DigitalOcean reports no addresses while a droplet is `new`.
            v4 = [
                {"ip_address": vm.ip, "netmask": "255.0.0.0", "gateway": "127.0.0.1", "type": "public"},
                {
                    "ip_address": f"10.{int(vm.id) % 250}.0.2",
                    "netmask": "255.255.0.0",
                    "gateway": "",
                    "type": "private",
                },
            ]
            if vm.extra.get("ipv6"):
                v6 = [
                    {
                        "ip_address": f"2001:db8::{int(vm.id) % 65536:x}",
                        "netmask": 64,
                        "gateway": "2001:db8::1",
                        "type": "public",
                    }
                ]
        return {
            "id": vm.id,
            "name": vm.name,
            "memory": memory,
            "vcpus": vcpus,
            "disk": disk,
            "locked": False,
            "status": self.status(vm),
            "kernel": None,
            "created_at": iso(vm.created),
            "features": ["private_networking", *(["ipv6"] if vm.extra.get("ipv6") else [])],
            "backup_ids": [],
            "next_backup_window": None,
            "snapshot_ids": [],
            "image": {
                "id": image_id,
                "name": image_name,
                "distribution": distribution,
                "slug": vm.image,
                "public": True,
                "regions": list(catalog.DO_REGIONS),
                "created_at": "2024-04-25T00:00:00Z",
                "type": "base",
                "min_disk_size": 7,
                "size_gigabytes": 2.36,
                "description": "",
                "tags": [],
                "status": "available",
                "error_message": "",
            },
            "volume_ids": [],
            "size": {
                "slug": vm.plan,
                "memory": memory,
                "vcpus": vcpus,
                "disk": disk,
                "transfer": 2.0,
                "price_monthly": price,
                "price_hourly": round(price / 672, 5),
                "regions": catalog.do_size_regions(vm.plan),
                "available": True,
                "description": "Basic",
            },
            "size_slug": vm.plan,
            "networks": {"v4": v4, "v6": v6},
            "region": self._region(vm.location),
            "tags": list(vm.tags),
            "vpc_uuid": vm.extra.get("vpc_uuid") or str(uuid.UUID(int=int(vm.id), version=4)),
        }

    def render_action(self, action: Action) -> dict[str, Any]:
        return {
            "id": action.id,
            "status": action.status,
            "type": action.command,
            "started_at": iso(action.started),
            "completed_at": iso(action.finished),
            "resource_id": action.resource_id,
            "resource_type": "droplet",
            "region": self._region(action.region) if action.region else None,
            "region_slug": action.region or None,
        }


def _image_slug(image: object) -> str | None:
    if isinstance(image, str) and image in catalog.DO_IMAGES:
        return image
    if isinstance(image, int | str) and str(image).isdigit():
        for slug, (image_id, _name, _dist) in catalog.DO_IMAGES.items():
            if image_id == int(image):
                return slug
    return None
