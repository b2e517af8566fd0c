"""The bridge as the tools' policy decision point: real bridge processes, a real gateway, Temporal and OpenBao."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from temporalio.service import RPCError, RPCStatusCode

from activities.secrets import AgentVault
from contracts.models import Decision
from gateway.app import approval_id
from tests.bridge.conftest import BridgeProcess
from tests.bridge.support import agent_api
from tests.gateway.support import agent_token, bearer, eventually, live
from tests.stack import Stack


async def authorize(
    api: httpx.AsyncClient, tool: str, body: dict[str, Any] | None = None, wait: float | None = None
) -> tuple[int, dict[str, Any]]:
    """Ask the agent API (on the bridge's Unix socket) as the agent's own process does."""
    params = {"wait": str(wait)} if wait is not None else None
    resp = await api.post(f"/tools/{tool}/authorize", json=body or {}, params=params)
    return resp.status_code, resp.json()


async def test_skill_update_reaches_the_bridge_and_gated_tools_wait_for_a_human(stack: Stack) -> None:
    async with live(stack, gateway_in_bootstrap=True) as env:
        agent_id = await env.agent(skills=["web.search", "email.send"], approvers=["alice"])
        address = (await stack.client.status(agent_id)).address
        async with (
            httpx.AsyncClient(base_url=address, timeout=60) as health,
            agent_api(stack.local.agent_socket(agent_id)) as bridge,
        ):

            async def skills_version() -> int | None:
                body = (await health.get("/health")).json()
                return body["skills_version"] + 1 if body.get("skills_version") is not None else None

            assert await eventually(skills_version, within=10, what="skills on the bridge") == 1

            assert await authorize(bridge, "web.search") == (
                200,
                {"allowed": True, "approval": "not_required", "skills_version": 0},
            )
            # Not enabled: refused at once, and nobody is asked.
            assert await authorize(bridge, "calendar.write", {"request_id": "cal1"}) == (
                403,
                {"allowed": False, "reason": "tool not enabled"},
            )
            count = f"WorkflowType = 'ToolApproval' AND WorkflowId STARTS_WITH 'approval-{agent_id}-'"
            assert (await stack.temporal.count_workflows(count)).count == 0
            assert (await authorize(bridge, "Bad Tool"))[0] in (400, 404)

            await stack.client.update_skills(
                agent_id, ["web.search", "email.send", "calendar.write"], requested_by="alice"
            )

            async def enabled() -> tuple[int, dict[str, Any]] | None:
                answer = await authorize(bridge, "calendar.write")
                return answer if answer[0] == 200 else None

            code, body = await eventually(enabled, within=10, what="calendar.write enabled on the bridge")
            assert body["allowed"] is True and body["skills_version"] == 1

            # Gated (email.*): the bridge asks the gateway and waits for the human.
            ask = asyncio.create_task(
                authorize(bridge, "email.send", {"request_id": "mail1", "arguments": {"to": "ceo@example.com"}})
            )
            handle = stack.temporal.get_workflow_handle(approval_id(agent_id, "mail1"))

            async def pending() -> bool:
                try:
                    return bool((await handle.query("status")).get("state") == "pending")
                except Exception:
                    return False

            await eventually(pending, within=10, what="the approval workflow")
            assert not ask.done()
            await handle.signal("approve", Decision(approver="alice", reason="expected"))
            code, body = await asyncio.wait_for(ask, 20)
            approved = {"allowed": True, "state": "approved", "decided_by": "alice", "reason": "expected"}
            assert (code, body) == (200, {**approved, "request_id": "mail1"})

            # Not decided within the caller's wait: "pending", and asking again joins the same approval.
            code, body = await authorize(bridge, "email.send", {"request_id": "mail2"}, wait=0.5)
            assert (code, body["state"], body["allowed"], body["request_id"]) == (202, "pending", False, "mail2")
            again = asyncio.create_task(authorize(bridge, "email.send", {"request_id": "mail2"}))
            await stack.temporal.get_workflow_handle(approval_id(agent_id, "mail2")).signal(
                "reject", Decision(approver="alice", reason="not today")
            )
            code, body = await asyncio.wait_for(again, 20)
            assert (code, body["allowed"], body["state"], body["decided_by"]) == (403, False, "rejected", "alice")
            assert (await stack.temporal.count_workflows(count)).count == 2

            # Taking a skill away reaches the bridge the same way.
            await stack.client.update_skills(agent_id, ["web.search"], requested_by="alice")

            async def disabled() -> bool:
                return (await authorize(bridge, "calendar.write"))[0] == 403

            await eventually(disabled, within=10, what="calendar.write disabled on the bridge")


def test_bridge_without_a_gateway_enables_no_tool(
    bridge_vault: AgentVault, agent_id: str, tmp_path: Path, start_bridge: Callable[..., BridgeProcess]
) -> None:
    bridge_vault.mint(agent_id)
    config = dataclasses.replace(
        bridge_vault.issue_bootstrap(agent_id, address_file=str(tmp_path / "bridge.addr")),
        agent_socket=str(tmp_path / "agent.sock"),
    )
    proc = start_bridge(config)
    _, health = proc.wait_status("healthy")
    assert "skills_version" not in health  # unchanged /health for bridges without a gateway
    with httpx.Client(transport=httpx.HTTPTransport(uds=config.agent_socket), base_url="http://bridge") as api:
        resp = api.post("/tools/web.search/authorize", json={}, timeout=5)
        assert (resp.status_code, resp.json()) == (403, {"allowed": False, "reason": "tool not enabled"})
        resp = api.post("/tools/Web%20Search/authorize", json={}, timeout=5)
        assert resp.status_code == 400
        resp = api.post("/tools/web.search/authorize", content=b"[1]", timeout=5)
        assert resp.status_code == 400
        assert api.post("/elsewhere", json={}, timeout=5).status_code == 404
    proc.stop()
    bridge_vault.destroy(agent_id)


# Request ids as an agent runtime might send them: the bridge refuses exactly what the gateway refuses, in its words.
REFUSED_IDS: list[object] = ["mail-1", "", "Mail1", "m" * 41, 0, 7]
ACCEPTED_IDS = ["mail1", "m" * 40]


async def test_the_bridge_route_and_the_gateway_endpoint_agree_on_request_ids(stack: Stack) -> None:
    async with live(stack, gateway_in_bootstrap=True) as env:
        agent_id = await env.agent(skills=["email.send"], approvers=["alice"])
        token = await agent_token(stack, agent_id)
        address = (await stack.client.status(agent_id)).address
        async with (
            httpx.AsyncClient(base_url=address, timeout=30) as health,
            agent_api(stack.local.agent_socket(agent_id), timeout=30) as bridge,
        ):

            async def skills_loaded() -> bool:
                return (await health.get("/health")).json().get("skills_version") is not None

            await eventually(skills_loaded, within=10, what="skills on the bridge")
            for request_id in REFUSED_IDS:
                body = {"request_id": request_id, "tool": "email.send"}
                resp = await env.http.post("/v1/approvals", json=body, headers=bearer(token))
                assert (resp.status_code, resp.json()["field"]) == (400, "request_id"), (request_id, resp.text)
                said = resp.json()["error"]
                if isinstance(request_id, str) and request_id:
                    resp = await env.http.get(f"/v1/approvals/{request_id}", headers=bearer(token))
                    assert (resp.status_code, resp.json()["error"]) == (400, said), request_id
                # The bridge refuses it itself, with the gateway's words, and asks nobody.
                answer = await authorize(bridge, "email.send", {"request_id": request_id}, wait=0.2)
                assert answer == (400, {"allowed": False, "reason": said}), request_id
                with pytest.raises(RPCError) as err:
                    await stack.temporal.get_workflow_handle(f"approval-{agent_id}-{request_id}").describe()
                assert err.value.status == RPCStatusCode.NOT_FOUND
                # The allowed form, '-' excluded by name: an id like a UUID with dashes is the likeliest mistake.
                assert said.startswith("request_id: must be ") and "no '-'" in said

            for request_id in ACCEPTED_IDS:
                body = {"request_id": request_id, "tool": "email.send"}
                resp = await env.http.post("/v1/approvals", json=body, headers=bearer(token))
                assert resp.status_code == 202, resp.text
                assert resp.json()["approval_id"] == approval_id(agent_id, request_id)
                # The bridge's identical call joins the same approval.
                code, joined = await authorize(bridge, "email.send", {"request_id": request_id}, wait=0.2)
                assert (code, joined["state"], joined["request_id"]) == (202, "pending", request_id)
                resp = await env.http.get(f"/v1/approvals/{request_id}", headers=bearer(token))
                assert (resp.status_code, resp.json()["state"]) == (200, "pending")

            count = f"WorkflowType = 'ToolApproval' AND WorkflowId STARTS_WITH 'approval-{agent_id}-'"
            assert (await stack.temporal.count_workflows(count)).count == len(ACCEPTED_IDS)
