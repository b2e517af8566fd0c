"""Hetzner Cloud API v1 (`{url}/hetzner/v1`): servers and actions, shaped like docs.hetzner.cloud's spec.

Errors are `{"error": {"code", "message", "details"}}` (spec "Errors"); hcloud's `_read_response` raises
`APIException(code=error["code"])` from them and retries `rate_limit_exceeded`, `conflict`, `bad_gateway`, `timeout`
and bare 502/504 itself (hcloud/_client.py `_retry_policy`).
"""

from __future__ import annotations

import math
import re
import secrets
import time
from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute

from cloudsim import catalog
from cloudsim.firewalls import HetznerFirewalls
from cloudsim.pipeline import ProviderAPI, Sim, json_body
from cloudsim.state import VM, Action

USER_DATA_LIMIT = 32 * 1024
MAX_PER_PAGE = 50
_CODES = {
    400: "json_error",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    409: "conflict",
    412: "resource_unavailable",
    422: "invalid_input",
    423: "locked",
    429: "rate_limit_exceeded",
    500: "server_error",
    502: "bad_gateway",
    503: "unavailable",
    504: "timeout",
}
_MESSAGES = {
    "unauthorized": "unable to authenticate",
    "rate_limit_exceeded": "limit of 3600 requests per hour reached",
    "server_error": "internal server error",
    "bad_gateway": "bad gateway",
    "unavailable": "service unavailable",
    "timeout": "gateway timeout",
}
_HOSTNAME = re.compile(
    r"^(?=.{1,63}$)[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?(\.[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?)*$"
)
_LABEL_NAME = r"[a-zA-Z0-9]([a-zA-Z0-9._-]{0,61}[a-zA-Z0-9])?"
_LABEL_KEY = re.compile(rf"^([a-z0-9]([a-z0-9.-]{{0,251}}[a-z0-9])?/)?{_LABEL_NAME}$")
_LABEL_VALUE = re.compile(rf"^({_LABEL_NAME})?$")


def iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(int(ts), UTC).isoformat()


class HetznerAPI(ProviderAPI):
    name = "hetzner"
    prefix = "/hetzner/v1"

    def __init__(self, sim: Sim) -> None:
        super().__init__(sim)
        self.firewalls = HetznerFirewalls(self)

    def routes(self) -> list[BaseRoute]:
        return [
            *self.firewalls.routes(),
            self.route("/servers", "create", self.create_server, ["POST"]),
            self.route("/servers", "list", self.list_servers, ["GET"]),
            self.route("/servers/{id}", "get", self.get_server, ["GET"]),
            self.route("/servers/{id}", "update", self.update_server, ["PUT"]),
            self.route("/servers/{id}", "delete", self.delete_server, ["DELETE"]),
            self.route("/actions/{id}", "action", self.get_action, ["GET"]),
            self.route("/servers/actions/{id}", "action", self.get_action, ["GET"]),
            self.route("/servers/{server_id}/actions/{id}", "action", self.get_action, ["GET"]),
        ]

    def error(self, status: int, message: str = "", code: str = "", details: Any = None) -> JSONResponse:
        code = code or _CODES.get(status, "server_error" if status >= 500 else "invalid_input")
        body = {
            "error": {
                "code": code,
                "message": message or _MESSAGES.get(code, code.replace("_", " ")),
                "details": details or {},
            }
        }
        return JSONResponse(body, status_code=status)

    def bad_body(self, exc: Exception) -> JSONResponse:
        return self.error(400, f"invalid JSON: {exc}", "json_error")

    def invalid(self, field: str, message: str) -> JSONResponse:
        details = {"fields": [{"name": field, "messages": [message]}]}
        # Spec "Error Codes": invalid_input is a 422 (400 is only json_error).
        return self.error(422, f"invalid input in field '{field}': {message}", "invalid_input", details)

    # --- handlers
    async def create_server(self, request: Request) -> Response:
        body = await json_body(request)
        name = body.get("name")
        if not isinstance(name, str) or not _HOSTNAME.match(name):
            return self.invalid("name", "must be a valid hostname (RFC 1123)")
        server_type = body.get("server_type")
        if server_type not in catalog.HETZNER_SERVER_TYPES:
            return self.invalid("server_type", f"server type {server_type!r} not found")
        image = body.get("image")
        if image not in catalog.HETZNER_IMAGES:
            return self.invalid("image", f"image {image!r} not found")
        location = body.get("location")
        if location is None and body.get("datacenter"):
            location = str(body["datacenter"]).split("-", 1)[0]
        location = location or "fsn1"
        if location not in catalog.HETZNER_LOCATIONS:
            return self.invalid("location", f"location {location!r} not found")
        if not catalog.hetzner_server_type_offered(server_type, location):
            return self.invalid("location", f"server type {server_type} is not supported in {location}")
        labels = body.get("labels") or {}
        if not _labels_ok(labels):
            return self.invalid("labels", "invalid label key or value")
        user_data = body.get("user_data") or ""
        if not isinstance(user_data, str):
            return self.invalid("user_data", "must be a string")
        if len(user_data.encode()) > USER_DATA_LIMIT:
            return self.invalid("user_data", "is too long")
        if self.sim.faults.capacity_blocks(self.name, location):
            # Spec error code `resource_unavailable`: "The requested resource is currently unavailable".
            return self.error(412, f"server type {server_type} is unavailable in {location}", "resource_unavailable")
        start = body.get("start_after_create", True) is not False
        firewall_ids = self.firewalls.attach_at_create(body.get("firewalls"))
        if isinstance(firewall_ids, str):
            return self.invalid("firewalls", firewall_ids)

        state = self.sim.state
        with state.lock:
            if any(vm.name == name for vm in state.list_vms(self.name)):
                return self.error(
                    409, "server name is already used", "uniqueness_error", {"fields": [{"name": "name"}]}
                )
            vm_id = state.next_int_id("hetzner")
            vm = VM(
                provider=self.name,
                id=vm_id,
                name=name,
                location=location,
                plan=server_type,
                image=image,
                ip=state.allocate_ip(),
                vm_dir=self.sim.vm_dir(self.name, vm_id),
                created=time.time(),
                labels=dict(labels),
                user_data=user_data,
            )
            create = state.add_action(self.name, "create_server", vm_id)
            next_actions = [state.add_action(self.name, "start_server", vm_id)] if start else []
            vm.extra.update(power_on=start, boot_actions=[create, *next_actions], ipv6_net=vm_id % 65536)
            state.add_vm(vm)
            self.firewalls.apply(firewall_ids, vm_id)
        self.sim.booter.schedule(vm)
        body_out = {
            "server": self.render(vm),
            "action": self.render_action(create),
            "next_actions": [self.render_action(a) for a in next_actions],
            "root_password": None if body.get("ssh_keys") else secrets.token_urlsafe(15),
        }
        return JSONResponse(body_out, status_code=201)

    async def list_servers(self, request: Request) -> Response:
        params = request.query_params
        vms = self.sim.state.list_vms(self.name)
        if "name" in params:
            vms = [vm for vm in vms if vm.name == params["name"]]
        if params.get("label_selector"):
            try:
                match = parse_label_selector(params["label_selector"])
            except ValueError as exc:
                return self.invalid("label_selector", str(exc))
            vms = [vm for vm in vms if match(vm.labels)]
        statuses = params.getlist("status")
        if statuses:
            vms = [vm for vm in vms if self.status(vm) in statuses]
        try:
            page = int(params.get("page", 1))
            per_page = int(params.get("per_page", 25))
        except ValueError:
            return self.invalid("page", "must be an integer")
        if page < 1:
            return self.invalid("page", "must be at least 1")
        # Spec "Pagination": "the maximum value is 50"; a larger page is refused, never silently cut.
        if not 1 <= per_page <= MAX_PER_PAGE:
            return self.invalid("per_page", f"must be between 1 and {MAX_PER_PAGE}")
        total = len(vms)
        last = max(1, math.ceil(total / per_page))
        chunk = vms[(page - 1) * per_page : page * per_page]
        pagination = {
            "page": page,
            "per_page": per_page,
            "previous_page": page - 1 if page > 1 else None,
            "next_page": page + 1 if page < last else None,
            "last_page": last,
            "total_entries": total,
        }
        response = JSONResponse({"servers": [self.render(vm) for vm in chunk], "meta": {"pagination": pagination}})
        return _with_page_links(response, request, pagination)

    async def get_server(self, request: Request) -> Response:
        vm = self.sim.state.get_vm(self.name, request.path_params["id"])
        if vm is None:
            return self.not_found("server", request.path_params["id"])
        return JSONResponse({"server": self.render(vm)})

    async def update_server(self, request: Request) -> Response:
        """Spec "Update a Server": `name` and `labels`, each optional; the labels given replace all the old ones."""
        vm_id = request.path_params["id"]
        body = await json_body(request)
        name, labels = body.get("name"), body.get("labels")
        if name is not None and (not isinstance(name, str) or not _HOSTNAME.match(name)):
            return self.invalid("name", "must be a valid hostname (RFC 1123)")
        if labels is not None and not _labels_ok(labels):
            return self.invalid("labels", "invalid label key or value")
        state = self.sim.state
        with state.lock:
            vm = state.get_vm(self.name, vm_id)
            if vm is None:
                return self.not_found("server", vm_id)
            if name is not None and any(other.name == name and other is not vm for other in state.list_vms(self.name)):
                return self.error(
                    409, "server name is already used", "uniqueness_error", {"fields": [{"name": "name"}]}
                )
            if name is not None:
                state.rename_vm(vm, name)
            if labels is not None:
                vm.labels = dict(labels)
        return JSONResponse({"server": self.render(vm)})

    async def delete_server(self, request: Request) -> Response:
        vm_id = request.path_params["id"]
        vm = self.sim.state.get_vm(self.name, vm_id)
        if vm is None:
            return self.not_found("server", vm_id)
        action = self.sim.state.add_action(self.name, "delete_server", vm.id)
        self.sim.remove_vm(self.name, vm_id, on_stopped=lambda: self.sim.state.finish_action(action))
        return JSONResponse({"action": self.render_action(action)})

    async def get_action(self, request: Request) -> Response:
        raw = request.path_params["id"]
        action = self.sim.state.get_action(self.name, int(raw)) if raw.isdigit() else None
        if action is None:
            return self.not_found("action", raw)
        return JSONResponse({"action": self.render_action(action)})

    def not_found(self, kind: str, ident: str) -> JSONResponse:
        return self.error(404, f"{kind} with ID '{ident}' not found", "not_found")

    # --- rendering
    def status(self, vm: VM) -> str:
        if vm.phase == "running":
            return "running" if vm.extra.get("power_on", True) else "off"
        return "initializing" if vm.phase == "provisioning" else "starting"

    def render(self, vm: VM) -> dict[str, Any]:
        image_id, description, version = catalog.HETZNER_IMAGES[vm.image]
        location = catalog.hetzner_location(vm.location)
        net = vm.extra.get("ipv6_net", 0)
        return {
            "id": vm.id,
            "name": vm.name,
            "status": self.status(vm),
            "created": iso(vm.created),
            "public_net": {
                "ipv4": {"id": 90_000_000 + int(vm.id) % 10_000_000, "ip": vm.ip, "blocked": False, "dns_ptr": ""},
                "ipv6": {
                    "id": 80_000_000 + int(vm.id) % 10_000_000,
                    "ip": f"2001:db8:{net:x}::/64",
                    "blocked": False,
                    "dns_ptr": [],
                },
                "floating_ips": [],
                "firewalls": self.firewalls.of_server(int(vm.id)),
            },
            "private_net": [],
            "server_type": catalog.hetzner_server_type(vm.plan),
            "datacenter": {
                "id": location["id"],
                "name": f"{vm.location}-dc1",
                "description": f"{location['description']} DC 1",
                "location": location,
                "server_types": _datacenter_server_types(vm.location),
            },
            "location": location,
            "image": {
                "id": image_id,
                "type": "system",
                "status": "available",
                "name": vm.image,
                "description": description,
                "image_size": None,
                "disk_size": 5,
                "created": "2024-04-25T00:00:00+00:00",
                "created_from": None,
                "bound_to": None,
                "os_flavor": vm.image.split("-", 1)[0],
                "os_version": version,
                "rapid_deploy": True,
                "protection": {"delete": False},
                "deprecated": None,
                "deleted": None,
                "labels": {},
                "architecture": "x86",
            },
            "iso": None,
            "rescue_enabled": False,
            "locked": False,
            "backup_window": None,
            "outgoing_traffic": 0,
            "ingoing_traffic": 0,
            "included_traffic": 21990232555520,
            "protection": {"delete": False, "rebuild": False},
            "labels": dict(vm.labels),
            "volumes": [],
            "load_balancers": [],
            "primary_disk_size": catalog.HETZNER_SERVER_TYPES[vm.plan][3],
            "placement_group": None,
        }

    def render_action(self, action: Action) -> dict[str, Any]:
        return {
            "id": action.id,
            "command": action.command,
            "status": action.status,
            "progress": 100 if action.finished is not None else 0,
            "started": iso(action.started),
            "finished": iso(action.finished),
            "resources": [{"id": action.resource_id, "type": "server"}],
            "error": None,
        }


def _labels_ok(labels: object) -> bool:
    """Spec "Labels": keys and values as Kubernetes labels (a key may carry a DNS prefix), values may be empty."""
    return isinstance(labels, dict) and all(
        isinstance(k, str) and isinstance(v, str) and _LABEL_KEY.match(k) and _LABEL_VALUE.match(v)
        for k, v in labels.items()
    )


def _datacenter_server_types(location: str) -> dict[str, list[int]]:
    offered = [
        type_id
        for name, (type_id, *_rest) in catalog.HETZNER_SERVER_TYPES.items()
        if catalog.hetzner_server_type_offered(name, location)
    ]
    return {"supported": offered, "available": offered, "available_for_migration": offered}


def _with_page_links(response: Response, request: Request, pagination: dict[str, Any]) -> Response:
    """Spec "Pagination": a `Link` header with prev/next/last, and the GET /servers answer's `x-next` header."""

    def url(page: int) -> str:
        return str(request.url.include_query_params(page=page, per_page=pagination["per_page"]))

    rels = {"prev": pagination["previous_page"], "next": pagination["next_page"], "last": pagination["last_page"]}
    links = [f'<{url(page)}>; rel="{rel}"' for rel, page in rels.items() if page is not None]
    response.headers["Link"] = ", ".join(links)
    if pagination["next_page"] is not None:
        response.headers["x-next"] = url(pagination["next_page"])
    return response


def parse_label_selector(selector: str) -> Any:
    """Compile a Hetzner label selector (spec "Label Selector") into a predicate over a labels dict."""
    terms: list[str] = []
    depth, start = 0, 0
    for i, ch in enumerate(selector):
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == "," and depth == 0:
            terms.append(selector[start:i])
            start = i + 1
    terms.append(selector[start:])
    checks = [_compile_term(t.strip()) for t in terms]
    return lambda labels: all(check(labels) for check in checks)


def _compile_term(term: str) -> Any:
    if not term:
        raise ValueError("empty expression")
    m = re.fullmatch(r"(\S+)\s+(in|notin)\s+\(([^)]*)\)", term)
    if m:
        key, op, values = m.group(1), m.group(2), {v.strip() for v in m.group(3).split(",")}
        if op == "in":
            return lambda labels: labels.get(key) in values
        return lambda labels: key in labels and labels[key] not in values
    if term.startswith("!"):
        key = term[1:].strip()
        return lambda labels: key not in labels
    for op in ("!=", "==", "="):
        if op in term:
            key, value = (s.strip() for s in term.split(op, 1))
            if not key:
                raise ValueError(f"bad expression {term!r}")
            if op == "!=":
                return lambda labels: labels.get(key) != value
            return lambda labels: labels.get(key) == value
    if not _LABEL_KEY.match(term):
        raise ValueError(f"bad expression {term!r}")
    return lambda labels: term in labels
