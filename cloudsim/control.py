"""The control endpoint under `/_sim`: state, faults, reset and live configuration. JSON in, JSON out, no auth."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from cloudsim.faults import FaultError, parse_fault
from cloudsim.pipeline import BadRequestBody, ProviderAPI, Sim, json_body


def control_routes(sim: Sim, apis: dict[str, ProviderAPI]) -> list[BaseRoute]:
    def snapshot() -> dict[str, Any]:
        with sim.state.lock:
            vms = [
                {
                    "provider": vm.provider,
                    "id": vm.id,
                    "name": vm.name,
                    "labels": dict(vm.labels),
                    "tags": list(vm.tags),
                    "status": apis[vm.provider].status(vm),
                    "phase": vm.phase,
                    "ip": vm.ip,
                    "location": vm.location,
                    "plan": vm.plan,
                    "bridge_pid": vm.bridge.pid if vm.bridge is not None and vm.bridge.poll() is None else None,
                    "agent_socket": vm.extra.get("agent_socket"),
                    # Vultr: the instance's firewall group ("" for none); Hetzner's are listed on the firewall.
                    "firewall_group_id": vm.extra.get("firewall_group_id"),
                }
                for vm in sorted(sim.state.vms.values(), key=lambda v: (v.created, str(v.id)))
            ]
            firewalls = [
                {
                    "provider": f.provider,
                    "id": f.id,
                    "name": f.name,
                    "description": f.description,
                    "labels": dict(f.labels),
                    "tags": list(f.tags),
                    # Hetzner `applied_to` and DigitalOcean `droplet_ids`, as the API was told (deleted ones too).
                    "server_ids": list(f.server_ids),
                }
                for f in sorted(sim.state.firewalls.values(), key=lambda f: (f.created, str(f.id)))
            ]
        calls, rate_limited = sim.state.snapshot_counters()
        return {
            "vms": vms,
            "firewalls": firewalls,
            "calls": calls,
            "rate_limited": rate_limited,
            "created": sim.state.snapshot_created(),
            "peak_live": sim.state.snapshot_peak_live(),
            "injected": sim.state.snapshot_injected(),
            "faults": sim.faults.as_dicts(),
            "config": {"boot_latency_s": sim.state.boot_latency_s, "rate_limits": sim.limiter.config},
        }

    async def state(_request: Request) -> Response:
        return JSONResponse(snapshot())

    async def set_fault(request: Request) -> Response:
        try:
            fault = parse_fault(await json_body(request))
        except (BadRequestBody, FaultError) as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        sim.faults.set(fault)
        return JSONResponse({"faults": sim.faults.as_dicts()})

    async def clear_faults(_request: Request) -> Response:
        sim.faults.clear()
        return JSONResponse({"faults": []})

    async def reset(_request: Request) -> Response:
        await sim.reset()
        return JSONResponse(snapshot())

    async def config(request: Request) -> Response:
        try:
            body = await json_body(request)
            if "boot_latency_s" in body:
                latency = float(body["boot_latency_s"])
                if latency < 0:
                    raise ValueError("boot_latency_s: must be >= 0")
                sim.state.boot_latency_s = latency
            for provider, values in (body.get("rate_limits") or {}).items():
                if not isinstance(values, dict):
                    raise ValueError(f"rate_limits.{provider}: must be an object")
                sim.limiter.configure(provider, values)
        except (BadRequestBody, TypeError, ValueError) as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        return JSONResponse(snapshot()["config"])

    return [
        Route("/_sim/state", state, methods=["GET"]),
        Route("/_sim/faults", set_fault, methods=["POST"]),
        Route("/_sim/faults", clear_faults, methods=["DELETE"]),
        Route("/_sim/reset", reset, methods=["POST"]),
        Route("/_sim/config", config, methods=["POST"]),
    ]
