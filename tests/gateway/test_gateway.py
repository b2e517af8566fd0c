"""The gateway against real Temporal (dev server, real workers), real OpenBao and real agent logins."""

from __future__ import annotations

import asyncio
import time
import uuid

import httpx
import pytest
from google.protobuf.message import Message
from temporalio.service import RPCError, RPCStatusCode

from contracts.models import Decision
from gateway.app import approval_id
from tests.gateway.support import (
    AUTH_CACHE_S,
    agent_token,
    bearer,
    eventually,
    live,
    root_vault,
)
from tests.stack import Stack

pytestmark = pytest.mark.asyncio(loop_scope="session")

GATED = {"skills": ["web.search", "email.send"], "approvers": ["alice"]}


async def test_skills_for_the_tokens_own_agent_and_a_revoked_token_is_refused(stack: Stack) -> None:
    async with live(stack) as env:
        http = env.http
        agent_id = await env.agent(**GATED)
        token = await agent_token(stack, agent_id)

        assert (await http.get("/healthz")).json() == {"status": "ok"}
        resp = await http.get("/v1/skills", headers=bearer(token))
        assert resp.status_code == 200
        assert resp.json() == {
            "agent_id": agent_id,
            "skills": ["web.search", "email.send"],
            "approval_required": ["email.*", "payments.*", "purchases.*"],
            "version": 0,
        }
        for headers in ({}, {"Authorization": "Basic abc"}, bearer("hvs.not-a-real-token")):
            refused = await http.get("/v1/skills", headers=headers)
            assert refused.status_code == 401, headers
            assert "error" in refused.json()

        root_vault(stack).auth.token.revoke(token)
        revoked_at = time.monotonic()

        async def refused_now() -> httpx.Response | None:
            r = await http.get("/v1/skills", headers=bearer(token))
            return r if r.status_code == 401 else None

        resp = await eventually(refused_now, within=AUTH_CACHE_S + 5, what="401 for the revoked token")
        assert resp.json() == {"error": "invalid token"}
        # The documented window: a revoked token works at most auth_cache_s longer (plus one request's latency).
        assert time.monotonic() - revoked_at <= AUTH_CACHE_S + 1.0


async def test_foreign_tokens_are_refused_and_agents_never_see_each_others_approvals(stack: Stack) -> None:
    root = root_vault(stack)
    async with live(stack) as env:
        http = env.http
        a = f"c-{uuid.uuid4().hex[:12]}"
        # Agent ids may contain '-', so B's id is A's plus a suffix: approval ids of A and B can collide.
        b = f"{a}-x"
        await asyncio.gather(env.agent(agent_id=a, **GATED), env.agent(agent_id=b, **GATED))
        token_a, token_b = await asyncio.gather(agent_token(stack, a), agent_token(stack, b))

        # Live tokens that are not an agent's login: no agent policy; and one forging the AppRole metadata.
        plain = root.auth.token.create(policies=["default"], ttl="5m")["auth"]["client_token"]
        forged = root.auth.token.create(policies=[f"agent-{a}"], meta={"role_name": f"agent-{a}"}, ttl="5m")
        for token in (plain, forged["auth"]["client_token"]):
            resp = await http.get("/v1/skills", headers=bearer(token))
            assert resp.status_code == 403, resp.text
            resp = await http.get("/v1/approvals/anything", headers=bearer(token))
            assert resp.status_code == 403

        # A request id with a '-' could make approval-<a>-x-r1 read as B's approval-<a-x>-r1: refused outright.
        body = {"request_id": "x-r1", "tool": "email.send", "arguments": {"to": "ceo@example.com"}}
        ambiguous = await http.post("/v1/approvals", json=body, headers=bearer(token_a))
        assert ambiguous.status_code == 400 and ambiguous.json()["field"] == "request_id"

        body = {**body, "request_id": "r1"}
        created = await http.post("/v1/approvals", json=body, headers=bearer(token_a))
        assert created.status_code == 202, created.text
        assert created.json()["approval_id"] == approval_id(a, "r1")
        assert (await http.get("/v1/approvals/r1", headers=bearer(token_a))).status_code == 200
        # B asking for "r1" reads B's own (nonexistent) approval, never A's.
        resp = await http.get("/v1/approvals/r1", headers=bearer(token_b))
        assert resp.status_code == 404


async def test_a_tool_outside_the_allow_list_starts_nothing(stack: Stack) -> None:
    async with live(stack) as env:
        http = env.http
        agent_id = await env.agent(**GATED)
        token = await agent_token(stack, agent_id)
        for tool in ("payments.charge", "shell.exec"):
            request_id = tool.replace(".", "") + "1"
            body = {"request_id": request_id, "tool": tool, "arguments": {"amount": "5"}}
            resp = await http.post("/v1/approvals", json=body, headers=bearer(token))
            assert resp.status_code == 403
            assert resp.json() == {"error": "not enabled", "field": "tool"}
            with pytest.raises(RPCError) as err:
                await stack.temporal.get_workflow_handle(approval_id(agent_id, request_id)).describe()
            assert err.value.status == RPCStatusCode.NOT_FOUND

        # Enabled but not gated: allowed without a workflow either.
        resp = await http.post("/v1/approvals", json={"request_id": "s1", "tool": "web.search"}, headers=bearer(token))
        assert resp.status_code == 200
        assert resp.json()["state"] == "not_required"
        with pytest.raises(RPCError):
            await stack.temporal.get_workflow_handle(approval_id(agent_id, "s1")).describe()


BAD_REQUESTS: list[tuple[dict[str, object], str]] = [
    ({"request_id": "Bad_Id", "tool": "email.send"}, "request_id"),
    ({"request_id": "r" * 41, "tool": "email.send"}, "request_id"),
    ({"request_id": "r", "tool": "Email"}, "tool"),
    ({"request_id": "r", "tool": "email.send", "arguments": {"nested": {"a": 1}}}, "arguments"),
    ({"request_id": "r", "tool": "email.send", "arguments": {f"k{i}": "v" for i in range(33)}}, "arguments"),
    ({"request_id": "r", "tool": "email.send", "arguments": ["a"]}, "arguments"),
    ({"request_id": "r", "tool": "email.send", "risk": "extreme"}, "risk"),
]


async def test_bad_requests_name_the_field_and_start_nothing(stack: Stack) -> None:
    async with live(stack) as env:
        agent_id = await env.agent(**GATED)
        token = await agent_token(stack, agent_id)
        for body, field in BAD_REQUESTS:
            resp = await env.http.post("/v1/approvals", json=body, headers=bearer(token))
            assert resp.status_code == 400, body
            assert resp.json()["field"] == field
            assert resp.json()["error"].startswith(f"{field}:")
        resp = await env.http.post("/v1/approvals", content=b"{not json", headers=bearer(token))
        assert (resp.status_code, resp.json()["field"]) == (400, "body")
        assert (
            await stack.temporal.count_workflows(
                f"WorkflowType = 'ToolApproval' AND WorkflowId STARTS_WITH 'approval-{agent_id}-'"
            )
        ).count == 0


async def test_gated_tool_one_approval_long_poll_returns_the_decision(stack: Stack) -> None:
    async with live(stack) as env:
        http = env.http
        agent_id = await env.agent(**GATED)
        token = await agent_token(stack, agent_id)
        body = {"request_id": "mail1", "tool": "email.send", "arguments": {"to": "ceo@example.com", "n": 3}}

        first = await http.post("/v1/approvals", json=body, headers=bearer(token))
        again = await http.post("/v1/approvals", json=body, headers=bearer(token))
        assert (first.status_code, again.status_code) == (202, 202)
        status = first.json()
        assert status["state"] == "pending"
        assert status["approvers"] == ["alice"]
        assert again.json()["approval_id"] == status["approval_id"] == approval_id(agent_id, "mail1")
        # The same request id for another call is refused, never answered with this call's decision.
        other = await http.post(
            "/v1/approvals", json={**body, "arguments": {"to": "all@example.com"}}, headers=bearer(token)
        )
        assert other.status_code == 409

        async def started() -> int | None:
            query = f"WorkflowType = 'ToolApproval' AND WorkflowId = '{status['approval_id']}'"
            return (await stack.temporal.count_workflows(query)).count or None

        assert await eventually(started, within=10, what="the approval in visibility") == 1
        # The Web UI list's line: what it waits for first, then agent, account, placement and requester.
        summary = await (await stack.temporal.get_workflow_handle(status["approval_id"]).describe()).static_summary()
        assert summary is not None and summary.startswith(
            f"Needs approval: tool email.send (high risk) for agent {agent_id}"
        )
        assert ", account acme, local/" in summary and ", requested by " in summary

        short = await http.get("/v1/approvals/mail1?wait=0.5", headers=bearer(token))
        assert short.json()["state"] == "pending"
        assert (await http.get("/v1/approvals/mail1?wait=31", headers=bearer(token))).status_code == 400
        assert (await http.get("/v1/approvals/nevermade", headers=bearer(token))).status_code == 404

        began = time.monotonic()
        poll = asyncio.create_task(http.get("/v1/approvals/mail1?wait=25", headers=bearer(token)))
        await asyncio.sleep(0.3)  # let the long poll start waiting before the human decides
        assert not poll.done()
        handle = stack.temporal.get_workflow_handle(status["approval_id"])
        await handle.signal("approve", Decision(approver="alice", reason="expected mail"))
        decided = await poll
        assert time.monotonic() - began < 10
        assert decided.status_code == 200
        assert decided.json()["state"] == "approved"
        assert (decided.json()["decided_by"], decided.json()["reason"]) == ("alice", "expected mail")
        # Asking again after the decision answers it; it never starts a second approval.
        replay = await http.post("/v1/approvals", json=body, headers=bearer(token))
        assert (replay.status_code, replay.json()["state"]) == (202, "approved")
        assert (await started()) == 1


async def test_sensitive_arguments_never_reach_history(stack: Stack) -> None:
    secrets = {
        "password": "correct horse battery staple",
        "api_key": "plain-but-keyed",
        "cardNumber": "4111 1111 1111 1111",
        "Authorization": "Basic dXNlcjpwYXNz",
        "body": "use token hvs.CAESIJx0sW8v1ZkPq9Yw3n7Lr2dE5tUa",
        "note": "sk-proj-7fQ2xLp9RtZ4mN8vB3cW6yH1",
        "ref": "Zx8Qp3Lm7Rt2Vb9Nc4Hw6Jk1Ys5Df0Ga",
        "card_in_text": "charge 5500-0000-0000-0004 please",
    }
    readable = {"to": "ceo@example.com", "subject": "Quarterly numbers for 2026"}
    async with live(stack) as env:
        http = env.http
        agent_id = await env.agent(**GATED)
        token = await agent_token(stack, agent_id)
        body = {"request_id": "redact1", "tool": "email.send", "arguments": {**secrets, **readable}}
        resp = await http.post("/v1/approvals", json=body, headers=bearer(token))
        assert resp.status_code == 202, resp.text

        handle = stack.temporal.get_workflow_handle(approval_id(agent_id, "redact1"))
        await handle.signal("reject", Decision(approver="alice", reason="no"))
        final = await http.get("/v1/approvals/redact1?wait=20", headers=bearer(token))
        assert final.json()["state"] == "rejected"

        history = await handle.fetch_history()
        raw = history.to_json()
        # Payload data is base64 inside that JSON: check the decoded payloads too.
        decoded = "\n".join(part for event in history.events for part in _payload_texts(event))
        for value in [*secrets.values(), token]:
            assert value not in raw, value
            assert value not in decoded, value
        assert "[redacted]" in decoded
        for value in readable.values():
            assert value in decoded


def _payload_texts(event: Message) -> list[str]:
    """The decoded data of every payload anywhere in one history event."""
    from temporalio.api.common.v1 import Payload

    found: list[str] = []

    def walk(msg: Message) -> None:
        if isinstance(msg, Payload):
            found.append(msg.data.decode(errors="replace"))
            return
        for _field, value in msg.ListFields():
            items = value if isinstance(value, (list, tuple)) or hasattr(value, "append") else [value]
            if hasattr(value, "items") and not isinstance(value, Message):
                items = list(value.values())
            for item in items:
                if isinstance(item, Message):
                    walk(item)

    walk(event)
    return found
