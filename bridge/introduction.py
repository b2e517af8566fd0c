"""Secure introduction: turn a bootstrap config into a logged-in Vault client holding the agent's secrets.

    lookup wrapping token -> check creation path -> unwrap (SecretID) -> AppRole login -> read own secrets

A warm pool VM (`BootstrapConfig.pool_slot`) introduces itself the same way with its pool identity, minus the
secrets: it has none (`bridge.pool` then waits for its claim and introduces the agent).

The lookup does not consume the token, so a token minted for another path is refused while still intact. A token that
is already used or expired means someone else may have unwrapped it: that is reported, never retried.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from typing import Any

import hvac
import hvac.exceptions as hv
import requests

from contracts.bootstrap import BootstrapConfig
from contracts.identifiers import kv_prefix

log = logging.getLogger(__name__)

REASON_USED = "bootstrap credential rejected: already used or expired (possible interception)"

# Server-side trouble worth waiting out; everything else from Vault is a refusal.
_TRANSIENT = (hv.VaultDown, hv.VaultNotInitialized, hv.InternalServerError, hv.BadGateway, hv.RateLimitExceeded)


class IntroductionError(Exception):
    """Base of the bridge's introduction errors; the message is safe to show on /health."""


class IntroductionRejected(IntroductionError):
    """Vault refused the bootstrap credential or the login; retrying cannot help."""


class CredentialRejected(IntroductionRejected):
    """The bootstrap credential itself was refused (already used, expired, or minted for another path): someone else
    may hold the agent's identity. The bridge reports status "compromised" (contracts.health)."""


class VaultUnreachable(IntroductionError):
    """Vault could not be reached or answered 5xx; retrying may help."""


@dataclass
class AgentSession:
    """A logged-in agent: its Vault client (holding its own token) and its secrets, in memory only."""

    client: hvac.Client = field(repr=False)
    accessor: str
    lease_duration: int
    renewable: bool
    secrets: dict[str, dict[str, Any]] = field(repr=False, default_factory=dict)

    @property
    def secrets_loaded(self) -> int:
        return len(self.secrets)


def _transient(exc: Exception) -> bool:
    return isinstance(exc, (requests.exceptions.RequestException, *_TRANSIENT))


# hvac keeps the answer's error text but not its status; each status has its own exception class.
_STATUS: tuple[tuple[type[hv.VaultError], int], ...] = (
    (hv.InvalidRequest, 400),
    (hv.Unauthorized, 401),
    (hv.Forbidden, 403),
    (hv.InvalidPath, 404),
    (hv.PreconditionFailed, 412),
    (hv.RateLimitExceeded, 429),
    (hv.InternalServerError, 500),
    (hv.VaultNotInitialized, 501),
    (hv.BadGateway, 502),
    (hv.VaultDown, 503),
)


def vault_answer(exc: BaseException, *secrets: str) -> str:
    """What Vault answered, for the log: status and Vault's error text, with any of `secrets` blanked out (Vault does
    not echo tokens, but the text is not ours). Not the exception's str(): hvac appends the URL."""
    if not isinstance(exc, hv.VaultError):
        return type(exc).__name__
    status = next((code for cls, code in _STATUS if isinstance(exc, cls)), None)
    errors = exc.errors if isinstance(exc.errors, list) else [exc.errors] if exc.errors else []
    text = "; ".join(str(error) for error in errors) or (str(exc.args[0]) if exc.args and exc.args[0] else "")
    for secret in secrets:
        if secret:
            text = text.replace(secret, "<redacted>")
    text = " ".join(text.replace("1 error occurred:", "").split())[:300]
    return f"HTTP {status if status else '?'} {type(exc).__name__}: {text or 'no error text'}"


class Introduction:
    """One agent's introduction, resumable: a retry after a network error continues from the step that failed, so a
    SecretID already unwrapped is not lost to a second (refused) unwrap."""

    def __init__(self, config: BootstrapConfig, *, timeout_s: float = 10.0) -> None:
        self._wrapped = config.wrapped_secret_id
        # Keep the rest of the config without the token, so nothing else holds it.
        self.config = dataclasses.replace(config, wrapped_secret_id="")
        self._timeout_s = timeout_s
        self._secret_id = ""
        self._session: AgentSession | None = None

    def _log_answer(self, what: str, exc: BaseException, *secrets: str) -> None:
        answer = vault_answer(exc, self._wrapped, self._secret_id, *secrets)
        log.warning("agent %s: vault answered %s: %s", self.config.agent_id, what, answer)

    def _client(self, token: str = "") -> hvac.Client:
        # token="" (not None): hvac would otherwise pick up VAULT_TOKEN or ~/.vault-token from this machine.
        return hvac.Client(
            url=self.config.vault_addr,
            token=token,
            timeout=self._timeout_s,  # type: ignore[arg-type]  # types-hvac says int; requests takes a float
        )

    def run(self) -> AgentSession:
        """Raises IntroductionRejected (final) or VaultUnreachable (retry later)."""
        if not self._secret_id and self._session is None:
            self._unwrap()
        if self._session is None:
            self._session = self._login()
        if not self.config.pool_slot:  # a pool VM has no secrets of its own: its token reads only its claim
            self._session.secrets = self._read_secrets(self._session.client)
        return self._session

    def _unwrap(self) -> None:
        if not self._wrapped:
            raise IntroductionRejected("bootstrap credential missing or already consumed by this bridge")
        cfg = self.config
        client = self._client()
        try:
            try:
                # sys/wrapping/lookup is unauthenticated and does not consume the token.
                info = client.adapter.post("/v1/sys/wrapping/lookup", json={"token": self._wrapped})
            except hv.VaultError as exc:
                self._log_answer("sys/wrapping/lookup", exc)
                if _transient(exc):
                    raise VaultUnreachable(f"vault wrapping lookup failed: {type(exc).__name__}") from exc
                self._wrapped = ""
                raise CredentialRejected(REASON_USED) from exc
            except requests.exceptions.RequestException as exc:
                raise VaultUnreachable(f"vault unreachable at {cfg.vault_addr}: {type(exc).__name__}") from exc

            creation_path = ((info or {}).get("data") or {}).get("creation_path", "")
            if creation_path != cfg.expected_creation_path:
                # Leave the token alone: its owner's bridge may still need it. Report the paths, never the token.
                self._wrapped = ""
                raise CredentialRejected(
                    f"bootstrap credential rejected: created at {creation_path!r}, expected "
                    f"{cfg.expected_creation_path!r} (possible tampering)"
                )

            client.token = self._wrapped
            try:
                resp = client.sys.unwrap()
            except hv.VaultError as exc:
                self._log_answer("sys/wrapping/unwrap", exc)
                if _transient(exc):
                    raise VaultUnreachable(f"vault unwrap failed: {type(exc).__name__}") from exc
                self._wrapped = ""
                raise CredentialRejected(REASON_USED) from exc
            except requests.exceptions.RequestException as exc:
                # The unwrap may have happened; a retry will then be refused and reported, which is the safe side.
                raise VaultUnreachable(f"vault unreachable at {cfg.vault_addr}: {type(exc).__name__}") from exc
        finally:
            client.token = ""
            client.adapter.close()
        self._wrapped = ""  # single use: forget it the moment it is spent
        self._secret_id = str((resp.get("data") or {}).get("secret_id", ""))
        if not self._secret_id:
            raise CredentialRejected("bootstrap credential rejected: wrapped response holds no SecretID")

    def _login(self) -> AgentSession:
        cfg = self.config
        client = self._client()
        try:
            resp = client.auth.approle.login(cfg.role_id, self._secret_id, mount_point=cfg.approle_mount)
        except (hv.VaultError, requests.exceptions.RequestException) as exc:
            client.adapter.close()
            self._log_answer(f"auth/{cfg.approle_mount}/login", exc)
            if _transient(exc):
                raise VaultUnreachable(f"vault login failed: {type(exc).__name__}") from exc
            self._secret_id = ""
            raise IntroductionRejected(f"AppRole login refused by vault ({type(exc).__name__})") from exc
        self._secret_id = ""  # single use as well (secret_id_num_uses=1)
        auth = resp.get("auth") or {}
        log.info("agent %s logged in to vault (token ttl %ss)", cfg.agent_id, auth.get("lease_duration"))
        return AgentSession(
            client=client,
            accessor=str(auth.get("accessor", "")),
            lease_duration=int(auth.get("lease_duration") or 0),
            renewable=bool(auth.get("renewable")),
        )

    def _read_secrets(self, client: hvac.Client) -> dict[str, dict[str, Any]]:
        cfg = self.config
        prefix = cfg.kv_prefix or kv_prefix(cfg.agent_id)
        kv = client.secrets.kv.v2
        found: dict[str, dict[str, Any]] = {}
        pending = [prefix]
        try:
            while pending:
                folder = pending.pop()
                try:
                    listing = kv.list_secrets(folder, mount_point=cfg.kv_mount)
                except hv.InvalidPath:
                    continue
                for entry in (listing.get("data") or {}).get("keys") or []:
                    if entry.endswith("/"):
                        pending.append(folder + entry)
                        continue
                    secret = kv.read_secret_version(
                        folder + entry, mount_point=cfg.kv_mount, raise_on_deleted_version=True
                    )
                    found[folder + entry] = dict((secret.get("data") or {}).get("data") or {})
        except (hv.VaultError, requests.exceptions.RequestException) as exc:
            self._log_answer(f"read of {cfg.kv_mount}/{prefix}", exc, client.token or "")
            if _transient(exc):
                raise VaultUnreachable(f"vault read of {cfg.kv_mount}/{prefix} failed: {type(exc).__name__}") from exc
            raise IntroductionRejected(f"vault refused reading {cfg.kv_mount}/{prefix} ({type(exc).__name__})") from exc
        log.info("agent %s loaded %d secrets", cfg.agent_id, len(found))
        return found
