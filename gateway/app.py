"""The gateway's HTTP API: bridges ask it for their skills and for approvals; it talks to Temporal for them.

    GET  /healthz                          liveness/readiness probe (no auth)
    GET  /v1/skills                        the calling agent's SkillConfig
    POST /v1/approvals                     ask before a gated tool; starts (or reuses) a ToolApproval workflow
    GET  /v1/approvals/{request_id}?wait=N long poll (N <= 30 s) until decided or N passes

Every /v1 call carries `Authorization: Bearer <the agent's own Vault token>` (see gateway.auth). The agent id is taken
from the token, never from the request, and every workflow id is built from it: an agent can only ever name its own
lifecycle and its own approvals.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import json
import logging
import time
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from fnmatch import fnmatchcase
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from temporalio.client import (
    Client,
    WorkflowFailureError,
    WorkflowHandle,
    WorkflowQueryFailedError,
    WorkflowQueryRejectedError,
)
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from contracts.identifiers import REQUEST_ID_RULE, is_request_id, workflow_id
from contracts.identifiers import approval_id as approval_id
from contracts.models import (
    AgentPolicy,
    AgentState,
    ApprovalState,
    ApprovalStatus,
    SkillConfig,
    ToolApprovalInput,
)
from contracts.workflow_names import POLICY_QUERY, STATUS_QUERY, TOOL_APPROVAL
from gateway.approvals import ApprovalRequest, RequestInvalid, parse_request
from gateway.auth import AgentIdentity, AuthError, VaultAuthenticator
from gateway.settings import GatewaySettings

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 64 * 1024
# Lifecycle states in which an agent's bridge may run tools; in any other the gateway enables nothing.
ACTIVE_STATES = frozenset({AgentState.PROVISIONING, AgentState.RUNNING, AgentState.DEGRADED})
_RPC_TIMEOUT = timedelta(seconds=10)


class Problem(Exception):
    """An answer other than success; the message is returned to the caller, so it never holds a secret."""

    def __init__(self, status: int, message: str, **extra: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.extra = extra


def _json_default(value: object) -> object:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


def _json(status: int, body: object) -> Response:
    if dataclasses.is_dataclass(body) and not isinstance(body, type):
        body = dataclasses.asdict(body)
    data = json.dumps(body, default=_json_default)
    return Response(data, status_code=status, media_type="application/json", headers={"Cache-Control": "no-store"})


def _fingerprint(agent_id: str, request: ApprovalRequest) -> str:
    """Binds a request id to one call: of the redacted arguments only, so it reveals nothing the input does not."""
    canonical = json.dumps([agent_id, request.tool, request.arguments, request.risk], sort_keys=True)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _temporal_problem(err: Exception, what: str) -> Problem:
    if isinstance(err, RPCError) and err.status == RPCStatusCode.NOT_FOUND:
        return Problem(404, f"{what} not found")
    log.warning("temporal call for %s failed: %s", what, type(err).__name__)
    return Problem(503, "temporal unavailable")


class Gateway:
    def __init__(self, settings: GatewaySettings, auth: VaultAuthenticator) -> None:
        self.settings = settings
        self.temporal: Client = settings.temporal
        self.auth = auth

    async def identity(self, request: Request) -> AgentIdentity:
        return await self.auth.authenticate(request.headers.get("authorization", ""))

    # --- Temporal ---------------------------------------------------------------------------------------------------

    async def policy(self, agent_id: str) -> AgentPolicy:
        handle = self.temporal.get_workflow_handle(workflow_id(agent_id))
        try:
            policy: AgentPolicy = await handle.query(POLICY_QUERY, result_type=AgentPolicy, rpc_timeout=_RPC_TIMEOUT)
        except (RPCError, WorkflowQueryFailedError, WorkflowQueryRejectedError) as err:
            raise _temporal_problem(err, "agent") from None
        if policy.agent_id != agent_id:
            raise Problem(404, "agent not found")
        return policy

    async def skills(self, agent_id: str) -> SkillConfig:
        policy = await self.policy(agent_id)
        if policy.state not in ACTIVE_STATES:
            # A lifecycle on its way out (or not yet provisioning) enables nothing, whatever its spec listed.
            return SkillConfig(agent_id=agent_id, skills=[], approval_required=[], version=policy.version)
        return SkillConfig(
            agent_id=agent_id,
            skills=list(policy.skills),
            approval_required=list(policy.approval_required),
            version=policy.version,
        )

    async def approval_status(self, handle: WorkflowHandle[Any, Any], agent_id: str) -> ApprovalStatus:
        try:
            status: ApprovalStatus = await handle.query(
                STATUS_QUERY, result_type=ApprovalStatus, rpc_timeout=_RPC_TIMEOUT
            )
        except (RPCError, WorkflowQueryFailedError, WorkflowQueryRejectedError) as err:
            raise _temporal_problem(err, "approval") from None
        # Approval ids cannot collide across agents (contracts.identifiers); checked anyway, the last word on ownership.
        if status.agent_id != agent_id:
            raise Problem(404, "approval not found")
        return status

    async def request_approval(
        self, identity: AgentIdentity, request: ApprovalRequest, policy: AgentPolicy
    ) -> ApprovalStatus:
        agent_id = identity.agent_id
        wid = approval_id(agent_id, request.request_id)
        s = self.settings
        escalation = list(policy.escalation_approvers)
        approvers = list(policy.approvers) or list(s.default_approvers)
        if not approvers:
            # Nobody could approve it: refuse now rather than let the agent wait for the expiry.
            raise Problem(409, "no approvers configured for this agent")
        approval = ToolApprovalInput(
            agent_id=agent_id,
            account_id=policy.account_id,
            request_id=request.request_id,
            tool=request.tool,
            arguments=request.arguments,
            risk=request.risk,
            requested_by=identity.principal,
            approvers=approvers,
            timeout_s=s.approval_timeout_s,
            escalation_approvers=escalation,
            escalation_timeout_s=s.escalation_timeout_s if escalation else 0,
        )
        fingerprint = _fingerprint(agent_id, request)
        try:
            handle = await self.temporal.start_workflow(
                TOOL_APPROVAL,
                approval,
                id=wid,
                task_queue=s.task_queue,
                # A retried POST (same request id) joins the open approval; a decided one is answered, never redone.
                id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                memo={"fingerprint": fingerprint},
                # Read in the Web UI's list: what it waits for first, then agent, account, placement and requester.
                static_summary=(
                    f"Needs approval: tool {request.tool} ({request.risk} risk) for agent {agent_id}, "
                    f"account {policy.account_id}, {policy.placement or 'placement unknown'}, "
                    f"requested by {identity.principal}"
                ),
                rpc_timeout=_RPC_TIMEOUT,
            )
        except WorkflowAlreadyStartedError:
            handle = self.temporal.get_workflow_handle(wid)
        except RPCError as err:
            raise _temporal_problem(err, "approval") from None
        try:
            memo = await (await handle.describe(rpc_timeout=_RPC_TIMEOUT)).memo()
        except RPCError as err:
            raise _temporal_problem(err, "approval") from None
        if memo.get("fingerprint") != fingerprint:
            # The same request id for another call must not inherit that call's decision.
            raise Problem(409, "request_id already used for a different tool call", field="request_id")
        return await self.approval_status(handle, agent_id)

    async def wait_decided(self, agent_id: str, request_id: str, wait_s: float) -> ApprovalStatus:
        """Return at once if decided; otherwise wait for the workflow's result (a cheap server-side long poll),
        re-reading the status every poll interval in case the decision is visible before the workflow closes."""
        handle = self.temporal.get_workflow_handle(approval_id(agent_id, request_id), result_type=ApprovalStatus)
        status = await self.approval_status(handle, agent_id)
        if status.state != ApprovalState.PENDING or wait_s <= 0:
            return status
        deadline = time.monotonic() + wait_s
        result = asyncio.create_task(handle.result())
        try:
            while (remaining := deadline - time.monotonic()) > 0:
                done, _ = await asyncio.wait({result}, timeout=min(remaining, self.settings.poll_interval_s))
                if done:
                    with contextlib.suppress(WorkflowFailureError, RPCError):
                        final = result.result()
                        if isinstance(final, ApprovalStatus) and final.agent_id == agent_id:
                            return final
                    return await self.approval_status(handle, agent_id)
                status = await self.approval_status(handle, agent_id)
                if status.state != ApprovalState.PENDING:
                    return status
            return status
        finally:
            result.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await result

    # --- handlers ---------------------------------------------------------------------------------------------------

    async def get_skills(self, request: Request) -> Response:
        identity = await self.identity(request)
        return _json(200, await self.skills(identity.agent_id))

    async def post_approval(self, request: Request) -> Response:
        identity = await self.identity(request)
        body = await request.body()
        if len(body) > MAX_BODY_BYTES:
            raise Problem(413, f"body larger than {MAX_BODY_BYTES} bytes")
        try:
            parsed = json.loads(body or b"null")
        except ValueError:
            raise Problem(400, "body: must be a JSON object", field="body") from None
        try:
            approval = parse_request(parsed)
        except RequestInvalid as err:
            raise Problem(400, str(err), field=err.field) from None
        policy = await self.policy(identity.agent_id)
        skills = set(policy.skills) if policy.state in ACTIVE_STATES else set()
        if approval.tool not in skills:
            log.info("agent %s asked for tool %s, which is not enabled", identity.agent_id, approval.tool)
            raise Problem(403, "not enabled", field="tool")
        if not any(fnmatchcase(approval.tool, pattern) for pattern in policy.approval_required):
            return _json(200, {"state": "not_required", "tool": approval.tool, "request_id": approval.request_id})
        status = await self.request_approval(identity, approval, policy)
        log.info(
            "agent %s approval %s for tool %s: %s", identity.agent_id, approval.request_id, approval.tool, status.state
        )
        return _json(202, status)

    async def get_approval(self, request: Request) -> Response:
        identity = await self.identity(request)
        request_id = request.path_params["request_id"]
        if not is_request_id(request_id):
            raise Problem(400, f"request_id: must be {REQUEST_ID_RULE}", field="request_id")
        raw_wait = request.query_params.get("wait", "0")
        try:
            wait_s = float(raw_wait)
        except ValueError:
            raise Problem(400, f"wait: must be seconds from 0 to {self.settings.max_wait_s:g}", field="wait") from None
        if not 0 <= wait_s <= self.settings.max_wait_s:
            raise Problem(400, f"wait: must be seconds from 0 to {self.settings.max_wait_s:g}", field="wait")
        return _json(200, await self.wait_decided(identity.agent_id, request_id, wait_s))


async def _healthz(_request: Request) -> Response:
    return _json(200, {"status": "ok"})


async def _problem(request: Request, exc: Exception) -> Response:
    if isinstance(exc, Problem):
        return _json(exc.status, {"error": exc.message, **exc.extra})
    if isinstance(exc, AuthError):
        return _json(exc.status, {"error": exc.message})
    log.error("unhandled %s on %s", type(exc).__name__, request.url.path)
    return _json(500, {"error": "internal error"})


async def _not_found(_request: Request, _exc: Exception) -> Response:
    return _json(404, {"error": "not found"})


def create_app(settings: GatewaySettings, *, auth: VaultAuthenticator | None = None) -> Starlette:
    authenticator = auth or VaultAuthenticator(
        settings.vault_addr,
        approle_mount=settings.approle_mount,
        cache_s=settings.auth_cache_s,
        timeout_s=settings.vault_timeout_s,
    )
    gateway = Gateway(settings, authenticator)

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        yield
        await authenticator.aclose()

    routes = [
        Route("/healthz", _healthz, methods=["GET"]),
        Route("/v1/skills", gateway.get_skills, methods=["GET"]),
        Route("/v1/approvals", gateway.post_approval, methods=["POST"]),
        Route("/v1/approvals/{request_id}", gateway.get_approval, methods=["GET"]),
    ]
    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={Problem: _problem, AuthError: _problem, Exception: _problem, 404: _not_found},
    )
    app.state.gateway = gateway
    return app
