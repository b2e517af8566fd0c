"""Firewall endpoints of the three providers, as their published API documents describe them (shared/specs).

- Hetzner `/firewalls`: create with `rules`, `labels` and `apply_to`; get; list (`name`, `label_selector`, pages);
  delete, refused with 422 `resource_in_use` while the firewall is still applied to a server. A server created with
  `firewalls: [{"firewall": id}]` is applied at once and lists it in `public_net.firewalls`.
- DigitalOcean `/v2/firewalls`: create with `inbound_rules`, `outbound_rules`, `droplet_ids` and `tags`; get; list;
  delete (allowed while droplets carry its tags, as on DigitalOcean).
- Vultr `/firewalls` (groups with a `description`) and `/firewalls/{id}/rules`; an instance created with
  `firewall_group_id` counts in its group's `instance_count`.

State only: nothing is filtered on the loopback network where the simulated VMs live.
"""

from __future__ import annotations

import ipaddress
import math
import re
import time
from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute

from cloudsim.pipeline import ProviderAPI, json_body
from cloudsim.state import Firewall

KEY = "firewall"
_DO_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9\.-]+$")
_PORT = re.compile(r"^([0-9]{1,5})(-([0-9]{1,5}))?$")


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(int(ts), UTC).isoformat()


def _cidr(value: object) -> bool:
    try:
        ipaddress.ip_network(str(value), strict=False)
    except ValueError:
        return False
    return isinstance(value, str) and "/" in value


def _port_ok(port: object, *, allow_all: bool = False) -> bool:
    if not isinstance(port, str):
        return False
    if allow_all and port in ("all", "0"):
        return True
    m = _PORT.match(port)
    if m is None:
        return False
    low, high = int(m.group(1)), int(m.group(3) or m.group(1))
    return 1 <= low <= high <= 65535


# --- Hetzner ---------------------------------------------------------------------------------------------------------


class HetznerFirewalls:
    def __init__(self, api: ProviderAPI) -> None:
        self.api = api
        self.sim = api.sim

    def routes(self) -> list[BaseRoute]:
        return [
            self.api.route("/firewalls", KEY, self.create, ["POST"]),
            self.api.route("/firewalls", KEY, self.list_all, ["GET"]),
            self.api.route("/firewalls/{id}", KEY, self.get, ["GET"]),
            self.api.route("/firewalls/{id}", KEY, self.delete, ["DELETE"]),
            self.api.route("/firewalls/{id}/actions/apply_to_resources", KEY, self.apply_to_resources, ["POST"]),
        ]

    def invalid(self, field: str, message: str) -> JSONResponse:
        details = {"fields": [{"name": field, "messages": [message]}]}
        return self.api.error(422, f"invalid input in field '{field}': {message}", "invalid_input", details)

    def _rules(self, raw: object) -> list[dict[str, Any]] | JSONResponse:
        if raw is None:
            return []
        if not isinstance(raw, list) or len(raw) > 50:
            return self.invalid("rules", "must be an array of at most 50 rules")
        rules: list[dict[str, Any]] = []
        for rule in raw:
            if not isinstance(rule, dict):
                return self.invalid("rules", "each rule must be an object")
            direction, protocol = rule.get("direction"), rule.get("protocol")
            if direction not in ("in", "out"):
                return self.invalid("rules", "direction must be 'in' or 'out'")
            if protocol not in ("tcp", "udp", "icmp", "esp", "gre"):
                return self.invalid("rules", "protocol must be one of tcp, udp, icmp, esp, gre")
            ips_key, other = (
                ("source_ips", "destination_ips") if direction == "in" else ("destination_ips", "source_ips")
            )
            ips = rule.get(ips_key) or []
            if rule.get(other):
                return self.invalid("rules", f"{other} must be empty for direction '{direction}'")
            if not isinstance(ips, list) or not ips or len(ips) > 100 or not all(_cidr(ip) for ip in ips):
                return self.invalid("rules", f"{ips_key} must hold 1 to 100 CIDR blocks")
            port = rule.get("port")
            if protocol in ("tcp", "udp"):
                if not _port_ok(port):
                    return self.invalid("rules", "port must be a port or a range like 1024-5000 for tcp and udp")
            elif port is not None:
                return self.invalid("rules", f"port is not allowed for protocol {protocol}")
            description = rule.get("description")
            rules.append(
                {
                    "description": description if isinstance(description, str) else None,
                    "direction": direction,
                    "source_ips": [str(ipaddress.ip_network(ip, strict=False)) for ip in ips]
                    if direction == "in"
                    else [],
                    "destination_ips": [str(ipaddress.ip_network(ip, strict=False)) for ip in ips]
                    if direction == "out"
                    else [],
                    "protocol": protocol,
                    "port": port if protocol in ("tcp", "udp") else None,
                }
            )
        return rules

    async def create(self, request: Request) -> Response:
        body = await json_body(request)
        name = body.get("name")
        if not isinstance(name, str) or not 1 <= len(name) <= 128:
            return self.invalid("name", "must be a string of 1 to 128 characters")
        labels = body.get("labels") or {}
        if not isinstance(labels, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in labels.items()
        ):
            return self.invalid("labels", "invalid label key or value")
        rules = self._rules(body.get("rules"))
        if isinstance(rules, JSONResponse):
            return rules
        servers: list[int] = []
        for target in body.get("apply_to") or []:
            if not isinstance(target, dict) or target.get("type") != "server":
                return self.invalid("apply_to", "only resources of type 'server' are supported here")
            server_id = (target.get("server") or {}).get("id")
            if not isinstance(server_id, int) or self.sim.state.get_vm(self.api.name, str(server_id)) is None:
                return self.api.error(422, f"server with ID '{server_id}' not found", "firewall_resource_not_found")
            if server_id in servers:
                return self.api.error(422, "server applied more than once", "server_already_added")
            servers.append(server_id)
        state = self.sim.state
        with state.lock:
            if any(f.name == name for f in state.list_firewalls(self.api.name)):
                return self.api.error(
                    409, "firewall name is already used", "uniqueness_error", {"fields": [{"name": "name"}]}
                )
            firewall = Firewall(
                provider=self.api.name,
                id=state.next_int_id(KEY),
                name=name,
                created=time.time(),
                labels=dict(labels),
                rules=rules,
                server_ids=servers,
            )
            state.add_firewall(firewall)
            actions = [state.add_action(self.api.name, "set_firewall_rules", firewall.id)]
            actions += [state.add_action(self.api.name, "apply_firewall", s) for s in servers]
        for action in actions:
            state.finish_action(action)
        rendered = [_hetzner_action(a.id, a.command, a.resource_id, a.started) for a in actions]
        return JSONResponse({"firewall": self.render(firewall), "actions": rendered}, status_code=201)

    async def list_all(self, request: Request) -> Response:
        from cloudsim.hetzner import parse_label_selector

        params = request.query_params
        firewalls = self.sim.state.list_firewalls(self.api.name)
        if "name" in params:
            firewalls = [f for f in firewalls if f.name == params["name"]]
        if params.get("label_selector"):
            try:
                match = parse_label_selector(params["label_selector"])
            except ValueError as exc:
                return self.invalid("label_selector", str(exc))
            firewalls = [f for f in firewalls if match(f.labels)]
        try:
            page = int(params.get("page", 1))
            per_page = int(params.get("per_page", 25))
        except ValueError:
            return self.invalid("page", "must be an integer")
        if page < 1 or not 1 <= per_page <= 50:
            return self.invalid("per_page" if page >= 1 else "page", "out of range")
        total = len(firewalls)
        last = max(1, math.ceil(total / per_page))
        chunk = firewalls[(page - 1) * per_page : page * per_page]
        pagination = {
            "page": page,
            "per_page": per_page,
            "previous_page": page - 1 if page > 1 else None,
            "next_page": page + 1 if page < last else None,
            "last_page": last,
            "total_entries": total,
        }
        return JSONResponse({"firewalls": [self.render(f) for f in chunk], "meta": {"pagination": pagination}})

    async def get(self, request: Request) -> Response:
        firewall = self.sim.state.get_firewall(self.api.name, request.path_params["id"])
        if firewall is None:
            return self.api.error(404, f"firewall with ID '{request.path_params['id']}' not found", "not_found")
        return JSONResponse({"firewall": self.render(firewall)})

    async def delete(self, request: Request) -> Response:
        state = self.sim.state
        with state.lock:
            firewall = state.get_firewall(self.api.name, request.path_params["id"])
            if firewall is None:
                return self.api.error(404, f"firewall with ID '{request.path_params['id']}' not found", "not_found")
            if self.applied(firewall):
                return self.api.error(422, "firewall is still applied to a resource", "resource_in_use")
            state.pop_firewall(self.api.name, str(firewall.id))
        return Response(status_code=204)

    async def apply_to_resources(self, request: Request) -> Response:
        """Spec "Apply to Resources": servers only here (no label selectors); 404 `firewall_resource_not_found` for a
        server that does not exist, 422 `firewall_already_applied` for one it is applied to, nothing applied then."""
        body = await json_body(request)
        targets = body.get("apply_to")
        if not isinstance(targets, list):
            return self.invalid("apply_to", "is required and must be an array")
        state = self.sim.state
        with state.lock:
            firewall = state.get_firewall(self.api.name, request.path_params["id"])
            if firewall is None:
                return self.api.error(404, f"firewall with ID '{request.path_params['id']}' not found", "not_found")
            servers: list[int] = []
            for target in targets:
                if not isinstance(target, dict) or target.get("type") != "server":
                    return self.invalid("apply_to", "only resources of type 'server' are supported here")
                server_id = (target.get("server") or {}).get("id")
                if not isinstance(server_id, int) or state.get_vm(self.api.name, str(server_id)) is None:
                    return self.api.error(404, f"server with ID '{server_id}' not found", "firewall_resource_not_found")
                if server_id in self.applied(firewall) or server_id in servers:
                    return self.api.error(
                        422, f"firewall is already applied to server {server_id}", "firewall_already_applied"
                    )
                servers.append(server_id)
            firewall.server_ids = [*self.applied(firewall), *servers]
            actions = [state.add_action(self.api.name, "apply_firewall", s) for s in servers]
        for action in actions:
            state.finish_action(action)
        rendered = [_hetzner_action(a.id, a.command, a.resource_id, a.started) for a in actions]
        return JSONResponse({"actions": rendered}, status_code=201)

    def applied(self, firewall: Firewall) -> list[int]:
        """The servers it is applied to now: a deleted server drops out, as on Hetzner."""
        return [s for s in firewall.server_ids if self.sim.state.get_vm(self.api.name, str(s)) is not None]

    def attach_at_create(self, raw: object) -> list[int] | str:
        """Server create's `firewalls`: the ids, or the reason they are refused."""
        if raw is None:
            return []
        if not isinstance(raw, list):
            return 'must be an array of {"firewall": id}'
        ids: list[int] = []
        for item in raw:
            fw_id = item.get("firewall") if isinstance(item, dict) else None
            if not isinstance(fw_id, int) or self.sim.state.get_firewall(self.api.name, str(fw_id)) is None:
                return f"firewall {fw_id!r} not found"
            ids.append(fw_id)
        return ids

    def apply(self, firewall_ids: list[int], server_id: int) -> None:
        with self.sim.state.lock:
            for fw_id in firewall_ids:
                firewall = self.sim.state.get_firewall(self.api.name, str(fw_id))
                if firewall is not None and server_id not in firewall.server_ids:
                    firewall.server_ids.append(server_id)

    def of_server(self, server_id: int) -> list[dict[str, Any]]:
        return [
            {"id": f.id, "status": "applied"}
            for f in self.sim.state.list_firewalls(self.api.name)
            if server_id in f.server_ids
        ]

    def render(self, firewall: Firewall) -> dict[str, Any]:
        return {
            "id": firewall.id,
            "name": firewall.name,
            "labels": dict(firewall.labels),
            "created": _iso(firewall.created),
            "rules": [dict(r) for r in firewall.rules],
            "applied_to": [{"type": "server", "server": {"id": s}} for s in self.applied(firewall)],
        }


def _hetzner_action(action_id: int, command: str, resource_id: int | str, started: float) -> dict[str, Any]:
    return {
        "id": action_id,
        "command": command,
        "status": "success",
        "progress": 100,
        "started": _iso(started),
        "finished": _iso(started),
        "resources": [{"id": resource_id, "type": "server" if command == "apply_firewall" else "firewall"}],
        "error": None,
    }


# --- DigitalOcean ----------------------------------------------------------------------------------------------------


class DigitalOceanFirewalls:
    def __init__(self, api: ProviderAPI) -> None:
        self.api = api
        self.sim = api.sim

    def routes(self) -> list[BaseRoute]:
        routes: list[BaseRoute] = []
        for path, handler, method in (
            ("/firewalls", self.create, "POST"),
            ("/firewalls", self.list_all, "GET"),
            ("/firewalls/{id}", self.get, "GET"),
            ("/firewalls/{id}", self.delete, "DELETE"),
        ):
            # The SDK asks for `firewalls/` and `firewalls/{id}/` too.
            routes.append(self.api.route(path, KEY, handler, [method]))
            routes.append(self.api.route(path + "/", KEY, handler, [method]))
        return routes

    def _rules(self, raw: object, direction: str) -> list[dict[str, Any]] | str:
        targets_key = "sources" if direction == "inbound" else "destinations"
        if raw is None:
            return []
        if not isinstance(raw, list):
            return f"{direction}_rules must be an array"
        rules: list[dict[str, Any]] = []
        for rule in raw:
            if not isinstance(rule, dict) or rule.get("protocol") not in ("tcp", "udp", "icmp"):
                return f"{direction}_rules: protocol must be one of tcp, udp, icmp"
            ports = rule.get("ports")
            if rule["protocol"] != "icmp" and not _port_ok(ports, allow_all=True):
                return f"{direction}_rules: ports must be a port, a range or 'all'"
            targets = rule.get(targets_key)
            if not isinstance(targets, dict):
                return f"{direction}_rules: {targets_key} is required"
            addresses = targets.get("addresses") or []
            if not isinstance(addresses, list) or not all(_cidr(a) or _host(a) for a in addresses):
                return f"{direction}_rules: {targets_key}.addresses must be IP addresses or CIDR blocks"
            kept = {
                "addresses": list(addresses),
                "droplet_ids": list(targets.get("droplet_ids") or []),
                "load_balancer_uids": list(targets.get("load_balancer_uids") or []),
                "kubernetes_ids": list(targets.get("kubernetes_ids") or []),
                "tags": list(targets.get("tags") or []),
            }
            rules.append({"protocol": rule["protocol"], "ports": ports or "0", targets_key: kept})
        return rules

    async def create(self, request: Request) -> Response:
        body = await json_body(request)
        name = body.get("name")
        if not isinstance(name, str) or not _DO_NAME.match(name):
            return self.api.error(400, "name must match ^[a-zA-Z0-9][a-zA-Z0-9\\.-]+$", "bad_request")
        inbound = self._rules(body.get("inbound_rules"), "inbound")
        outbound = self._rules(body.get("outbound_rules"), "outbound")
        for rules in (inbound, outbound):
            if isinstance(rules, str):
                return self.api.error(400, rules, "bad_request")
        assert not isinstance(inbound, str) and not isinstance(outbound, str)
        if not inbound and not outbound:
            return self.api.error(400, "must specify at least one inbound or outbound rule", "bad_request")
        droplet_ids = body.get("droplet_ids") or []
        tags = body.get("tags") or []
        if not isinstance(droplet_ids, list) or not all(isinstance(d, int) for d in droplet_ids):
            return self.api.error(400, "droplet_ids must be an array of integers", "bad_request")
        if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
            return self.api.error(400, "tags must be an array of strings", "bad_request")
        for droplet_id in droplet_ids:
            if self.sim.state.get_vm(self.api.name, str(droplet_id)) is None:
                return self.api.error(404, f"droplet {droplet_id} not found", "not_found")
        state = self.sim.state
        firewall = Firewall(
            provider=self.api.name,
            id=state.next_uuid(),
            name=name,
            created=time.time(),
            rules=[{"inbound": r} for r in inbound] + [{"outbound": r} for r in outbound],
            server_ids=list(dict.fromkeys(droplet_ids)),
            tags=list(dict.fromkeys(tags)),
        )
        state.add_firewall(firewall)
        return JSONResponse({"firewall": self.render(firewall)}, status_code=202)

    async def list_all(self, request: Request) -> Response:
        params = request.query_params
        firewalls = self.sim.state.list_firewalls(self.api.name)
        try:
            page = max(1, int(params.get("page", 1)))
            per_page = min(max(1, int(params.get("per_page", 20))), 200)
        except ValueError:
            return self.api.error(400, "page and per_page must be integers")
        total = len(firewalls)
        last = max(1, -(-total // per_page))
        chunk = firewalls[(page - 1) * per_page : page * per_page]
        pages: dict[str, str] = {}
        if page > 1:
            pages["first"] = str(request.url.include_query_params(page=1, per_page=per_page))
            pages["prev"] = str(request.url.include_query_params(page=page - 1, per_page=per_page))
        if page < last:
            pages["next"] = str(request.url.include_query_params(page=page + 1, per_page=per_page))
            pages["last"] = str(request.url.include_query_params(page=last, per_page=per_page))
        return JSONResponse(
            {"firewalls": [self.render(f) for f in chunk], "links": {"pages": pages}, "meta": {"total": total}}
        )

    async def get(self, request: Request) -> Response:
        firewall = self.sim.state.get_firewall(self.api.name, request.path_params["id"])
        if firewall is None:
            return self.api.error(404)
        return JSONResponse({"firewall": self.render(firewall)})

    async def delete(self, request: Request) -> Response:
        if self.sim.state.pop_firewall(self.api.name, request.path_params["id"]) is None:
            return self.api.error(404)
        return Response(status_code=204)

    def render(self, firewall: Firewall) -> dict[str, Any]:
        live = [d for d in firewall.server_ids if self.sim.state.get_vm(self.api.name, str(d)) is not None]
        return {
            "id": firewall.id,
            "status": "succeeded",
            "created_at": datetime.fromtimestamp(int(firewall.created), UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "pending_changes": [],
            "name": firewall.name,
            "droplet_ids": live,
            "tags": list(firewall.tags),
            "inbound_rules": [r["inbound"] for r in firewall.rules if "inbound" in r],
            "outbound_rules": [r["outbound"] for r in firewall.rules if "outbound" in r],
        }


def _host(value: object) -> bool:
    try:
        ipaddress.ip_address(str(value))
    except ValueError:
        return False
    return True


# --- Vultr -----------------------------------------------------------------------------------------------------------


class VultrFirewalls:
    def __init__(self, api: ProviderAPI) -> None:
        self.api = api
        self.sim = api.sim

    def routes(self) -> list[BaseRoute]:
        return [
            self.api.route("/firewalls", KEY, self.create, ["POST"]),
            self.api.route("/firewalls", KEY, self.list_all, ["GET"]),
            self.api.route("/firewalls/{id}", KEY, self.get, ["GET"]),
            self.api.route("/firewalls/{id}", KEY, self.delete, ["DELETE"]),
            self.api.route("/firewalls/{id}/rules", KEY, self.create_rule, ["POST"]),
            self.api.route("/firewalls/{id}/rules", KEY, self.list_rules, ["GET"]),
        ]

    def _group(self, request: Request) -> Firewall | None:
        return self.sim.state.get_firewall(self.api.name, request.path_params["id"])

    async def create(self, request: Request) -> Response:
        body = await json_body(request)
        description = body.get("description", "")
        if not isinstance(description, str):
            return self.api.error(400, "description must be a string.")
        firewall = Firewall(
            provider=self.api.name,
            id=self.sim.state.next_uuid(),
            name="",
            created=time.time(),
            description=description,
        )
        self.sim.state.add_firewall(firewall)
        return JSONResponse({"firewall_group": self.render(firewall)}, status_code=201)

    async def list_all(self, request: Request) -> Response:
        from cloudsim.vultr import decode_cursor, encode_cursor

        params = request.query_params
        groups = self.sim.state.list_firewalls(self.api.name)
        try:
            per_page = min(max(1, int(params.get("per_page", 100))), 500)
            offset = decode_cursor(params["cursor"]) if params.get("cursor") else 0
        except (ValueError, UnicodeDecodeError):
            return self.api.error(400, "Invalid cursor or per_page.")
        chunk = groups[offset : offset + per_page]
        links = {
            "next": encode_cursor(offset + per_page) if offset + per_page < len(groups) else "",
            "prev": encode_cursor(max(0, offset - per_page)) if offset > 0 else "",
        }
        return JSONResponse(
            {"firewall_groups": [self.render(g) for g in chunk], "meta": {"total": len(groups), "links": links}}
        )

    async def get(self, request: Request) -> Response:
        group = self._group(request)
        if group is None:
            return self.api.error(404, "Invalid firewall group ID.")
        return JSONResponse({"firewall_group": self.render(group)})

    async def delete(self, request: Request) -> Response:
        group = self.sim.state.pop_firewall(self.api.name, request.path_params["id"])
        if group is None:
            return self.api.error(404, "Invalid firewall group ID.")
        return Response(status_code=204)

    async def create_rule(self, request: Request) -> Response:
        group = self._group(request)
        if group is None:
            return self.api.error(404, "Invalid firewall group ID.")
        body = await json_body(request)
        ip_type, protocol = body.get("ip_type"), body.get("protocol")
        subnet, size = body.get("subnet"), body.get("subnet_size")
        if ip_type not in ("v4", "v6"):
            return self.api.error(400, "Invalid ip_type: must be v4 or v6.")
        if protocol not in ("icmp", "tcp", "udp", "gre", "esp", "ah"):
            return self.api.error(400, "Invalid protocol.")
        if not isinstance(size, int) or not _cidr(f"{subnet}/{size}"):
            return self.api.error(400, "Invalid subnet or subnet_size.")
        network = ipaddress.ip_network(f"{subnet}/{size}", strict=False)
        if (network.version == 4) != (ip_type == "v4"):
            return self.api.error(400, "Invalid subnet for ip_type.")
        port = body.get("port", "")
        if protocol in ("tcp", "udp") and not _port_ok(port):
            return self.api.error(400, "Invalid port: a port or a range like 8000:9000 is required for tcp and udp.")
        if len(group.rules) >= 50:
            return self.api.error(400, "Firewall group has reached the maximum number of rules.")
        with self.sim.state.lock:
            rule = {
                "id": self.sim.state.next_int_id("firewall_rule"),
                "type": ip_type,
                "ip_type": ip_type,
                "action": "accept",
                "protocol": protocol,
                "port": str(port or ""),
                "subnet": str(subnet),
                "subnet_size": size,
                "source": str(body.get("source") or ""),
                "notes": str(body.get("notes") or ""),
            }
            group.rules.append(rule)
            group.modified = time.time()
        return JSONResponse({"firewall_rule": rule}, status_code=201)

    async def list_rules(self, request: Request) -> Response:
        group = self._group(request)
        if group is None:
            return self.api.error(404, "Invalid firewall group ID.")
        rules = list(group.rules)
        return JSONResponse({"firewall_rules": rules, "meta": {"total": len(rules), "links": {"next": "", "prev": ""}}})

    def instance_count(self, group_id: str) -> int:
        return sum(1 for vm in self.sim.state.list_vms(self.api.name) if vm.extra.get("firewall_group_id") == group_id)

    def exists(self, group_id: str) -> bool:
        return self.sim.state.get_firewall(self.api.name, group_id) is not None

    def render(self, group: Firewall) -> dict[str, Any]:
        modified = group.modified or group.created
        return {
            "id": group.id,
            "description": group.description,
            "date_created": _iso(group.created),
            "date_modified": _iso(modified),
            "instance_count": self.instance_count(str(group.id)),
            "rule_count": len(group.rules),
            "max_rule_count": 50,
        }


__all__ = ["KEY", "DigitalOceanFirewalls", "HetznerFirewalls", "VultrFirewalls"]
