"""The bridge as the policy decision point for the agent's tools: which are enabled, which need a human first.

The agent runtime asks `POST /tools/{tool}/authorize` on the agent API (`bridge.agent_api`, a Unix socket only the
agent's user can use) before running a tool, and runs it itself only if allowed:
- a tool not in the agent's skills is refused at once, without asking anyone;
- an enabled tool matching an `approval_required` pattern creates an approval at the gateway and waits (long polls)
  until a human decides, the approval expires, or `authorize_wait_s` passes (then "pending": ask again with the same
  request_id, which joins the same approval);
- any other enabled tool is allowed.

Skills come from the gateway (`GET /v1/skills`), polled every `skills_poll_s` with the agent's own Vault token; the
bridge never holds Temporal credentials. Everything fails closed: no gateway configured, skills not loaded yet, the
gateway refusing the token, or skills older than `skills_stale_s` all enable nothing.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Any

import requests

from contracts.identifiers import REQUEST_ID_RULE, TOOL_RULE, is_request_id, is_tool

log = logging.getLogger(__name__)

DECIDED = ("approved", "rejected", "expired", "cancelled")
# Each long poll to the gateway stays under its 30 s bound and common proxy idle timeouts.
LONG_POLL_S = 25.0

Answer = tuple[int, dict[str, Any]]


@dataclass(frozen=True)
class Skills:
    agent_id: str
    skills: frozenset[str]
    approval_required: tuple[str, ...]
    version: int

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> Skills:
        return cls(
            agent_id=str(body.get("agent_id", "")),
            skills=frozenset(str(s) for s in body.get("skills") or ()),
            approval_required=tuple(str(p) for p in body.get("approval_required") or ()),
            version=int(body.get("version") or 0),
        )

    def gated(self, tool: str) -> bool:
        return any(fnmatchcase(tool, pattern) for pattern in self.approval_required)


class GatewayUnavailable(Exception):
    """The gateway could not be reached or answered 5xx; the message never holds the token."""


class GatewayClient:
    """The bridge's side of the gateway API, authenticated with the agent's own Vault token (never logged)."""

    def __init__(self, base_url: str, token: Callable[[], str], *, timeout_s: float = 10.0) -> None:
        self.base_url = base_url.rstrip("/")
        self._token = token
        self._timeout_s = timeout_s
        self._http = requests.Session()
        self._http.trust_env = False  # no proxy or netrc from the VM's environment gets the token

    def close(self) -> None:
        self._http.close()

    def _call(self, method: str, path: str, *, json: object = None, timeout_s: float | None = None) -> Answer:
        token = self._token()
        if not token:
            raise GatewayUnavailable("no vault token yet (introduction in progress)")
        try:
            resp = self._http.request(
                method,
                self.base_url + path,
                json=json,
                headers={"Authorization": f"Bearer {token}"},
                timeout=timeout_s or self._timeout_s,
            )
        except requests.exceptions.RequestException as exc:
            raise GatewayUnavailable(f"gateway unreachable at {self.base_url}: {type(exc).__name__}") from None
        if resp.status_code >= 500:
            raise GatewayUnavailable(f"gateway answered {resp.status_code}")
        try:
            body = resp.json()
        except ValueError:
            body = {}
        return resp.status_code, body if isinstance(body, dict) else {}

    def skills(self) -> Answer:
        return self._call("GET", "/v1/skills")

    def request_approval(self, request_id: str, tool: str, arguments: dict[str, Any], risk: str) -> Answer:
        body = {"request_id": request_id, "tool": tool, "arguments": arguments, "risk": risk}
        return self._call("POST", "/v1/approvals", json=body)

    def approval(self, request_id: str, wait_s: float) -> Answer:
        return self._call("GET", f"/v1/approvals/{request_id}?wait={wait_s:g}", timeout_s=wait_s + self._timeout_s)


@dataclass
class SkillsState:
    """The current skills, shared between the poller thread and the HTTP handlers."""

    stale_after_s: float = 60.0
    _skills: Skills | None = None
    _refreshed_at: float = 0.0
    _reason: str = "skills not loaded yet"
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def set(self, skills: Skills) -> None:
        with self._lock:
            self._skills, self._refreshed_at, self._reason = skills, time.monotonic(), ""

    def clear(self, reason: str) -> None:
        with self._lock:
            self._skills, self._reason = None, reason

    def current(self) -> tuple[Skills | None, str]:
        """The skills to enforce now, or None and why nothing is enabled."""
        with self._lock:
            if self._skills is not None and time.monotonic() - self._refreshed_at > self.stale_after_s:
                self._skills, self._reason = None, "skills out of date (gateway unreachable)"
            return self._skills, self._reason

    @property
    def version(self) -> int | None:
        skills, _ = self.current()
        return skills.version if skills else None


def refused(reason: str, code: int = 403, **extra: object) -> Answer:
    return code, {"allowed": False, "reason": reason, **extra}


class Authorizer:
    def __init__(
        self,
        gateway: GatewayClient | None,
        skills: SkillsState,
        *,
        wait_s: float = 300.0,
        stop: threading.Event | None = None,
    ) -> None:
        self.gateway = gateway
        self.skills = skills
        self.wait_s = wait_s
        self._stop = stop or threading.Event()

    def refresh(self) -> None:
        """One skills poll. A refusal of our token clears the skills (fail closed); an outage keeps them until stale."""
        if self.gateway is None:
            return
        try:
            code, body = self.gateway.skills()
        except GatewayUnavailable as exc:
            log.warning("skills refresh failed: %s", exc)
            return
        if code == 200:
            fresh = Skills.from_json(body)
            if fresh.version != self.skills.version:
                log.info("skills version %d: %d enabled", fresh.version, len(fresh.skills))
            self.skills.set(fresh)
        else:
            log.warning("gateway refused the skills request (%d: %s)", code, str(body.get("error", ""))[:100])
            self.skills.clear(f"gateway refused the bridge ({code})")

    def authorize(self, tool: str, body: dict[str, Any], wait_s: float | None = None) -> Answer:
        if not is_tool(tool):
            return refused(f"tool: must be {TOOL_RULE}", 400)
        # The gateway's rule, checked here first: absent means "assign one"; anything given must be a valid id.
        request_id = body.get("request_id")
        if request_id is None:
            request_id = uuid.uuid4().hex
        elif not is_request_id(request_id):
            return refused(f"request_id: must be {REQUEST_ID_RULE}", 400)
        if self.gateway is None:
            return refused("tool not enabled")  # no gateway configured: this bridge enables no tool at all
        skills, why = self.skills.current()
        if skills is None:
            return refused(why, 503)
        if tool not in skills.skills:
            return refused("tool not enabled")
        if not skills.gated(tool):
            return 200, {"allowed": True, "approval": "not_required", "skills_version": skills.version}
        arguments = body.get("arguments") or {}
        if not isinstance(arguments, dict):
            return refused("arguments: must be a JSON object", 400)
        risk = body.get("risk") or "high"
        try:
            limit = self.wait_s if wait_s is None else min(wait_s, self.wait_s)
            return self._approve(self.gateway, request_id, tool, arguments, str(risk), limit)
        except GatewayUnavailable as exc:
            log.warning("approval %s for %s: %s", request_id, tool, exc)
            return refused("gateway unavailable", 503, request_id=request_id)

    def _approve(
        self, gateway: GatewayClient, request_id: str, tool: str, arguments: dict[str, Any], risk: str, wait_s: float
    ) -> Answer:
        code, status = gateway.request_approval(request_id, tool, arguments, risk)
        if code == 200 and status.get("state") == "not_required":
            return 200, {"allowed": True, "approval": "not_required", "request_id": request_id}
        if code == 403:
            return refused("tool not enabled", request_id=request_id)
        if code != 202:
            return refused(str(status.get("error", f"gateway answered {code}")), code, request_id=request_id)
        deadline = time.monotonic() + wait_s
        while status.get("state") not in DECIDED:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or self._stop.is_set():
                return 202, {
                    "allowed": False,
                    "state": "pending",
                    "request_id": request_id,
                    "reason": "waiting for approval; ask again with the same request_id",
                }
            code, polled = gateway.approval(request_id, min(LONG_POLL_S, max(remaining, 0.1)))
            if code != 200:
                return refused(str(polled.get("error", f"gateway answered {code}")), 502, request_id=request_id)
            status = polled
        allowed = status["state"] == "approved"
        answer = {
            "allowed": allowed,
            "state": status["state"],
            "decided_by": str(status.get("decided_by", "")),
            "reason": str(status.get("reason", "")),
            "request_id": request_id,
        }
        return (200 if allowed else 403), answer
