"""The bridge process: serve /health at once (to the orchestrator) and the agent API on its Unix socket (to the agent's
own process only), introduce the agent to Vault in the background, keep its token alive, and (with a gateway
configured) keep the agent's skills current for POST /tools/{tool}/authorize.

A warm pool VM's bridge (`config.pool_slot` set) first introduces its pool identity, answers /health for its slot,
and waits for its claim (`bridge.pool`); claimed, it drops its pool token and introduces the agent like any bridge."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import hvac.exceptions as hv
import requests

from bridge.agent_api import AgentAPIServer, AgentAPIUnavailable, resolve_user
from bridge.health import HealthState
from bridge.introduction import (
    AgentSession,
    CredentialRejected,
    Introduction,
    IntroductionRejected,
    VaultUnreachable,
)
from bridge.pool import (
    MIN_CLAIM_READ_GAP_S,
    REASON_WAITING,
    ClaimInvalid,
    PoolIdentityLost,
    agent_config,
    read_claim,
)
from bridge.server import HealthServer, write_address_file
from bridge.tools import Authorizer, GatewayClient, SkillsState
from contracts.bootstrap import BootstrapConfig

log = logging.getLogger(__name__)


class Bridge:
    def __init__(
        self,
        config: BootstrapConfig,
        *,
        retry_for_s: float = 300.0,
        first_backoff_s: float = 0.5,
        max_backoff_s: float = 5.0,
        vault_timeout_s: float = 10.0,
    ) -> None:
        self._vault_timeout_s = vault_timeout_s
        self._introduction = Introduction(config, timeout_s=vault_timeout_s)
        self.config = self._introduction.config  # without the wrapped token
        self.skills = SkillsState(stale_after_s=config.skills_stale_s)
        self.state = HealthState(
            config.agent_id,
            skills_version=(lambda: self.skills.version) if config.gateway_url else None,
            pool=bool(config.pool_slot),
        )
        self._retry_for_s = retry_for_s
        self._first_backoff_s = first_backoff_s
        self._max_backoff_s = max_backoff_s
        self._stop = threading.Event()
        # A pool VM: set by POST /claim (and by stop) to look for the claim now; its pool identity's session.
        self._claim_poke = threading.Event()
        self._pool_session: AgentSession | None = None
        self._server: HealthServer | None = None
        self._agent_api: AgentAPIServer | None = None
        self._threads: list[threading.Thread] = []
        self.session: AgentSession | None = None
        self._gateway = GatewayClient(config.gateway_url, self._token) if config.gateway_url else None
        self.authorizer = Authorizer(self._gateway, self.skills, wait_s=config.authorize_wait_s, stop=self._stop)

    @property
    def base_url(self) -> str:
        if self._server is None:
            raise RuntimeError("bridge not started")
        return self._server.base_url

    def start(self) -> None:
        """Bind and serve /health first (a prober sees "starting"), then the agent API, publish the address, then
        introduce. An agent API that cannot be served as configured leaves the bridge unhealthy, saying why, and
        the bootstrap credential unused."""
        pool = bool(self.config.pool_slot)
        self._server = HealthServer(
            self.config.listen_host, self.config.listen_port, self.state, on_claim=self.poke if pool else None
        )
        self._spawn("health-server", self._server.serve_forever)
        try:
            self._agent_api = self._serve_agent_api()
        except (AgentAPIUnavailable, OSError) as exc:
            reason = str(exc) if isinstance(exc, AgentAPIUnavailable) else f"agent_socket: {exc.strerror}"
            log.error("agent %s: no agent API: %s", self.config.agent_id, reason)
            self.state.set("unhealthy", f"agent API not served: {reason}")
        if self.config.address_file:
            write_address_file(self.config.address_file, self._server.base_url)
        log.info("agent %s bridge serving health at %s", self.config.agent_id, self._server.base_url)
        if self.state.status != "unhealthy":
            self._spawn("introduction", self._wait_for_claim_then_agent if pool else self._introduce_and_renew)

    def poke(self) -> None:
        """POST /claim: look for the claim now. Cheap and safe to call any number of times from any thread."""
        self._claim_poke.set()

    def _serve_agent_api(self) -> AgentAPIServer | None:
        if not self.config.agent_socket:
            log.warning("agent %s: no agent_socket configured, so no tool can be authorized", self.config.agent_id)
            return None
        server = AgentAPIServer(
            self.config.agent_socket,
            agent_uid=resolve_user(self.config.agent_user),
            authorizer=self.authorizer,
            on_request=self.state.touch,
        )
        self._spawn("agent-api", server.serve_forever)
        log.info("agent %s agent API on %s for uid %d", self.config.agent_id, server.path, server.agent_uid)
        return server

    def stop(self, timeout_s: float = 5.0) -> None:
        self._stop.set()
        self._claim_poke.set()
        for server in (self._server, self._agent_api):
            if server is not None:
                server.shutdown()
                server.server_close()
        for thread in self._threads:
            thread.join(timeout_s)
        if self._gateway is not None:
            self._gateway.close()
        for session in (self._pool_session, self.session):
            if session is not None:
                self._revoke_own_token(session)

    def _spawn(self, name: str, target: Callable[[], object]) -> None:
        thread = threading.Thread(target=target, name=f"bridge-{name}", daemon=True)
        thread.start()
        self._threads.append(thread)

    def _token(self) -> str:
        session = self.session
        return str(session.client.token or "") if session is not None else ""

    def _introduce_and_renew(self) -> None:
        session = self._introduce()
        if session is not None:
            self.session = session
            if self._gateway is not None:
                self._spawn("skills", self._poll_skills)
            self._renew(session)

    # --- warm pool VM ------------------------------------------------------------------------------------------------

    def _wait_for_claim_then_agent(self) -> None:
        pool_session = self._introduce()  # the pool identity, with a normal bridge's retries and "compromised"
        if pool_session is None:
            return
        self._pool_session = pool_session
        self.state.set("healthy", REASON_WAITING, secrets_loaded=0)
        log.info("pool VM %s ready, waiting for its claim", self.config.pool_slot)
        agent = self._wait_for_claim(pool_session)
        if agent is None:
            return
        # The pool token has done its job: drop it before becoming the agent.
        self._pool_session = None
        self._revoke_own_token(pool_session)
        self._become(agent)
        self._introduce_and_renew()

    def _wait_for_claim(self, session: AgentSession) -> BootstrapConfig | None:
        """Read the claim every claim_poll_s, or at once when poked (at most every MIN_CLAIM_READ_GAP_S), renewing the
        pool token meanwhile. None when stopped, or (status set, saying why) when no claim can come any more."""
        cfg = self.config
        renew_at = time.monotonic() + session.lease_duration / 2 if session.renewable else float("inf")
        last_read = float("-inf")
        while not self._stop.is_set():
            gap = last_read + MIN_CLAIM_READ_GAP_S - time.monotonic()
            if gap > 0 and self._stop.wait(gap):
                return None
            self._claim_poke.clear()
            last_read = time.monotonic()
            try:
                claim = read_claim(session.client, cfg)
                if claim is not None:
                    agent = agent_config(cfg, claim)  # validated before anything of it is logged
                    log.info("pool VM %s claimed by agent %s", cfg.pool_slot, agent.agent_id)
                    return agent
                if time.monotonic() >= renew_at:
                    renew_at = time.monotonic() + self._renew_pool_token(session) / 2
            except (PoolIdentityLost, ClaimInvalid) as exc:
                log.error("pool VM %s: %s", cfg.pool_slot, exc)
                self.state.set("unhealthy", str(exc))
                return None
            except VaultUnreachable as exc:
                log.warning("pool VM %s: %s; will retry", cfg.pool_slot, exc)
            wait = min(cfg.claim_poll_s, max(renew_at - time.monotonic(), 0.0))
            self._claim_poke.wait(wait)
        return None

    def _renew_pool_token(self, session: AgentSession) -> float:
        """Renew the pool token; its new TTL. Raises PoolIdentityLost or VaultUnreachable."""
        try:
            resp = session.client.auth.token.renew_self()
        except (hv.Forbidden, hv.Unauthorized, hv.InvalidRequest) as exc:
            raise PoolIdentityLost(
                f"pool identity no longer valid: token renewal refused ({type(exc).__name__})"
            ) from exc
        except (hv.VaultError, requests.exceptions.RequestException) as exc:
            raise VaultUnreachable(f"pool token renewal failed: {type(exc).__name__}") from exc
        ttl = float((resp.get("auth") or {}).get("lease_duration") or 0)
        return max(ttl, 10.0)

    def _become(self, agent: BootstrapConfig) -> None:
        """From now on this bridge is the agent's: its introduction, its id on /health, its gateway."""
        slot = self.config.pool_slot
        self._introduction = Introduction(agent, timeout_s=self._vault_timeout_s)
        self.config = self._introduction.config
        self.state.become(agent.agent_id, f"claimed from pool VM {slot}: introduction in progress")
        if self.config.gateway_url and self._gateway is None:
            self._gateway = GatewayClient(self.config.gateway_url, self._token)
            self.authorizer.gateway = self._gateway
            self.state.track_skills(lambda: self.skills.version)

    def _poll_skills(self) -> None:
        """Re-read the skills every few seconds: an `update_skills` signal reaches the bridge within one period."""
        while True:
            self.authorizer.refresh()
            if self._stop.wait(self.config.skills_poll_s):
                return

    def _introduce(self) -> AgentSession | None:
        deadline = time.monotonic() + self._retry_for_s
        backoff = self._first_backoff_s
        attempt = 0
        while not self._stop.is_set():
            attempt += 1
            try:
                session = self._introduction.run()
            except IntroductionRejected as exc:
                log.error("agent %s introduction refused: %s", self.config.agent_id, exc)
                self.state.set("compromised" if isinstance(exc, CredentialRejected) else "unhealthy", str(exc))
                return None
            except VaultUnreachable as exc:
                if time.monotonic() + backoff > deadline:
                    reason = f"{exc}; gave up after {attempt} attempts in {self._retry_for_s:.0f}s"
                    log.error("agent %s introduction failed: %s", self.config.agent_id, reason)
                    self.state.set("unhealthy", reason)
                    return None
                log.warning("agent %s introduction attempt %d: %s; retrying", self.config.agent_id, attempt, exc)
                self.state.set("starting", f"{exc}; retrying (attempt {attempt})")
                self._stop.wait(backoff)
                backoff = min(backoff * 2, self._max_backoff_s)
                continue
            self.state.set("healthy", "", secrets_loaded=session.secrets_loaded)
            return session
        return None

    def _renew(self, session: AgentSession) -> None:
        """Renew the token at half its TTL; a revoked token (agent destroyed) turns the bridge unhealthy."""
        ttl = session.lease_duration
        if not session.renewable or ttl <= 0:
            return
        while not self._stop.wait(max(ttl / 2, 5.0)):
            try:
                resp = session.client.auth.token.renew_self()
                ttl = int((resp.get("auth") or {}).get("lease_duration") or ttl)
            except (hv.Forbidden, hv.Unauthorized, hv.InvalidRequest) as exc:
                self.state.set("unhealthy", f"vault token no longer valid ({type(exc).__name__})")
                return
            except (hv.VaultError, requests.exceptions.RequestException) as exc:
                log.warning("agent %s token renewal failed: %s; will retry", self.config.agent_id, type(exc).__name__)
                ttl = max(ttl // 2, 10)

    def _revoke_own_token(self, session: AgentSession) -> None:
        # The SecretID was single-use, so a stopped bridge can never use this token again: do not leave it alive.
        try:
            session.client.auth.token.revoke_self()
        except (hv.VaultError, requests.exceptions.RequestException) as exc:
            log.warning("agent %s could not revoke its token: %s", self.config.agent_id, type(exc).__name__)
        finally:
            session.client.adapter.close()
