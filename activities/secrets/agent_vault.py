"""Per-agent Vault state: mint, bootstrap, destroy, and count what is left. Synchronous (hvac is)."""

from __future__ import annotations

import logging
import secrets
from typing import Any

import hvac
import hvac.exceptions as hv

from activities.errors import SecretsRejected
from activities.secrets.errors import vault_errors, vault_path_exists
from activities.secrets.maintenance import VaultMaintenance
from activities.secrets.names import AgentNames
from activities.secrets.policy import render_agent_policy
from activities.secrets.settings import VaultSettings
from activities.secrets.tokens import TokenFinder
from contracts.bootstrap import BootstrapConfig
from contracts.models import Residue, SecretRefs

log = logging.getLogger(__name__)

TRANSIT_KEY_TYPE = "aes256-gcm96"
TRANSIT_AUTO_ROTATE = "2160h"  # 90 days; the KeyRotation schedule also rewraps and raises min_decryption_version
ROLE_SETTINGS: dict[str, Any] = {
    "secret_id_num_uses": 1,
    "secret_id_ttl": "10m",
    "token_ttl": "1h",
    "token_max_ttl": "4h",
    "token_num_uses": 0,
}
# The agent's certificate role: server certificates for exactly one DNS name (set per agent), EC P-256, never stored
# by Vault (destroy does not revoke: a certificate dies with its short TTL, see `destroy`), no lease.
CERT_ROLE_SETTINGS: dict[str, Any] = {
    "allow_bare_domains": True,
    "allow_subdomains": False,
    "allow_glob_domains": False,
    "allow_wildcard_certificates": False,
    "allow_any_name": False,
    "allow_localhost": False,
    "allow_ip_sans": False,
    "allowed_uri_sans": "",
    "allowed_other_sans": "",
    "enforce_hostnames": True,
    "server_flag": True,
    "client_flag": False,
    "key_type": "ec",
    "key_bits": 256,
    "no_store": True,
    "generate_lease": False,
}
# The operator step makes the agents' CA; a stack that mounts its own engines (tests, on non-default mounts) makes one
# like it. Ten years: the mount's max TTL is raised to match, since it caps the root too.
CA_TTL = "87600h"
CA_COMMON_NAME = "Lobstack agents CA"


class AgentVault(VaultMaintenance):
    """Everything one agent owns in Vault. Build once per worker; methods are safe to call from several threads."""

    def __init__(self, settings: VaultSettings, *, client: hvac.Client | None = None) -> None:
        self.settings = settings
        self._client = client or settings.client()
        self._tokens = TokenFinder(self._client, settings.approle_mount)

    @classmethod
    def from_env(cls) -> AgentVault:
        return cls(VaultSettings.from_env())

    def close(self) -> None:
        self._client.adapter.close()

    def names(self, agent_id: str) -> AgentNames:
        return AgentNames.of(agent_id, self.settings)

    # --- engines -----------------------------------------------------------------------------------------------

    def ensure_engines(self) -> None:
        """Idempotently mount kv-v2, transit, pki (with its CA) and approle where the settings say. Safe against a
        racing worker. With the orchestrator's policy, which can only read the mount tables, this verifies them."""
        s = self.settings
        self._ensure_mount(s.kv_mount, "kv", options={"version": "2"})
        self._ensure_mount(s.transit_mount, "transit")
        self._ensure_mount(s.pki_mount, "pki", config={"max_lease_ttl": CA_TTL})
        self._ensure_ca()
        self._ensure_auth(s.approle_mount, "approle")

    def agents_ca_pem(self) -> str:
        """The agents' CA certificate (PEM): every verifier of a bridge trusts it and nothing else does."""
        pem = self._read_ca()
        if not pem:
            raise SecretsRejected(f"vault {self.settings.pki_mount}/ has no CA; run deploy/vault/bootstrap.sh")
        return pem

    def _read_ca(self) -> str:
        path = f"{self.settings.pki_mount}/ca/pem"
        with vault_errors("read", path):
            try:
                pem = self._client.secrets.pki.read_ca_certificate(mount_point=self.settings.pki_mount)
            except (hv.InvalidPath, hv.InvalidRequest):
                return ""  # a mount without a CA yet
        return pem if "BEGIN CERTIFICATE" in pem else ""

    def _ensure_ca(self) -> None:
        if self._read_ca():
            return
        with vault_errors("write", f"{self.settings.pki_mount}/root/generate/internal"):
            self._client.secrets.pki.generate_root(
                "internal",
                CA_COMMON_NAME,
                extra_params={"ttl": CA_TTL, "key_type": "ec", "key_bits": 256},
                mount_point=self.settings.pki_mount,
            )

    def _ensure_mount(
        self, path: str, kind: str, options: dict[str, str] | None = None, config: dict[str, str] | None = None
    ) -> None:
        def current() -> dict[str, Any] | None:
            with vault_errors("list", "sys/mounts"):
                mounts = self._client.sys.list_mounted_secrets_engines()
            mount = (mounts.get("data") or mounts).get(f"{path}/")
            return mount if isinstance(mount, dict) else None

        mount = current()
        if mount is None:
            with vault_errors("enable", f"sys/mounts/{path}"):
                try:
                    self._client.sys.enable_secrets_engine(kind, path=path, options=options, config=config)
                except hv.InvalidRequest:
                    mount = current()  # another worker mounted it meanwhile
                    if mount is None:
                        raise
            mount = mount or current()
        if mount is None or mount.get("type") != kind:
            raise SecretsRejected(f"vault mount {path}/ is not a {kind} engine")
        if kind == "kv" and (mount.get("options") or {}).get("version") != "2":
            raise SecretsRejected(f"vault mount {path}/ is kv version 1; kv version 2 is required")

    def _ensure_auth(self, path: str, kind: str) -> None:
        def current() -> dict[str, Any] | None:
            with vault_errors("list", "sys/auth"):
                methods = self._client.sys.list_auth_methods()
            method = (methods.get("data") or methods).get(f"{path}/")
            return method if isinstance(method, dict) else None

        method = current()
        if method is None:
            with vault_errors("enable", f"sys/auth/{path}"):
                try:
                    self._client.sys.enable_auth_method(kind, path=path)
                except hv.InvalidRequest:
                    if current() is None:
                        raise
            if kind == "approle":
                # No user lockout: the role_id travels in user-data and SecretIDs are random and single use, so
                # lockout only lets whoever saw the user-data lock the agent out (as deploy/vault/bootstrap.sh does;
                # OpenBao ignores this setting when given at enable time, hence the tune).
                with vault_errors("tune", f"sys/auth/{path}/tune"):
                    self._client.adapter.post(
                        f"/v1/sys/auth/{path}/tune", json={"user_lockout_config": {"lockout_disable": True}}
                    )
            method = current()
        if method is None or method.get("type") != kind:
            raise SecretsRejected(f"vault auth method {path}/ is not {kind}")

    # --- mint --------------------------------------------------------------------------------------------------

    def mint(self, agent_id: str, *, account_id: str = "") -> SecretRefs:
        """Create the agent's policy, Transit key, AppRole role, certificate role and identity secret. A retry
        changes nothing."""
        n = self.names(agent_id)
        s = self.settings
        with vault_errors("write", f"sys/policies/acl/{n.policy}"):
            self._client.sys.create_or_update_policy(n.policy, render_agent_policy(agent_id, s))

        key_path = f"{s.transit_mount}/keys/{n.transit_key}"
        with vault_errors("write", key_path):
            # Creating an existing key is a no-op; the config call makes the rotation period right on both paths.
            self._client.secrets.transit.create_key(
                n.transit_key,
                key_type=TRANSIT_KEY_TYPE,
                auto_rotate_period=TRANSIT_AUTO_ROTATE,
                mount_point=s.transit_mount,
            )
        with vault_errors("write", f"{key_path}/config"):
            self._client.secrets.transit.update_key_configuration(
                n.transit_key, auto_rotate_period=TRANSIT_AUTO_ROTATE, mount_point=s.transit_mount
            )

        with vault_errors("write", f"auth/{s.approle_mount}/role/{n.role}"):
            self._client.auth.approle.create_or_update_approle(
                n.role, token_policies=[n.policy], mount_point=s.approle_mount, **ROLE_SETTINGS
            )

        with vault_errors("write", f"{s.pki_mount}/roles/{n.certificate_role}"):
            self._client.secrets.pki.create_or_update_role(
                n.certificate_role,
                extra_params={
                    **CERT_ROLE_SETTINGS,
                    "allowed_domains": [n.certificate_name],
                    "ttl": f"{s.cert_ttl_s}s",
                    "max_ttl": f"{s.cert_ttl_s}s",
                },
                mount_point=s.pki_mount,
            )

        self._mint_identity(n, account_id)
        log.info("minted secrets of agent %s", agent_id)
        return SecretRefs(
            kv_path=f"{s.kv_mount}/{n.kv_prefix}", policy=n.policy, role=n.role, transit_key=n.transit_key
        )

    def _mint_identity(self, n: AgentNames, account_id: str) -> None:
        kv = self._client.secrets.kv.v2
        path = f"{n.kv_mount}/data/{n.identity_path}"
        with vault_errors("write", path):
            try:
                # cas=0: write only if absent, so a retried mint never rotates a key the agent may already hold.
                kv.create_or_update_secret(
                    n.identity_path, {"agent_key": secrets.token_urlsafe(32)}, cas=0, mount_point=n.kv_mount
                )
            except hv.InvalidRequest:
                if not self._exists(
                    f"{n.kv_mount}/metadata/{n.identity_path}",
                    lambda: kv.read_secret_metadata(n.identity_path, mount_point=n.kv_mount),
                ):
                    raise
        # Labels for the orphan sweep; no values.
        labels = {"agent_id": n.agent_id, "account_id": account_id, "managed_by": "lobstack"}
        labels = {k: v for k, v in labels.items() if v}  # Vault refuses empty custom_metadata values
        with vault_errors("write", f"{n.kv_mount}/metadata/{n.identity_path}"):
            kv.update_metadata(n.identity_path, custom_metadata=labels, mount_point=n.kv_mount)

    # --- bootstrap ---------------------------------------------------------------------------------------------

    def issue_bootstrap(
        self, agent_id: str, *, listen_host: str = "127.0.0.1", listen_port: int = 0, address_file: str = ""
    ) -> BootstrapConfig:
        """A fresh single-use, response-wrapped SecretID for the agent's VM.

        The only place the wrapped token exists on our side: it goes straight into the VM's user-data and must never be
        logged, returned from an activity or put in workflow history.
        """
        n = self.names(agent_id)
        s = self.settings
        role_path = f"auth/{s.approle_mount}/role/{n.role}"
        with vault_errors("read", f"{role_path}/role-id"):
            role_id = self._client.auth.approle.read_role_id(n.role, mount_point=s.approle_mount)["data"]["role_id"]
        with vault_errors("write", n.secret_id_path):
            resp = self._client.auth.approle.generate_secret_id(
                n.role, metadata={"agent_id": n.agent_id}, mount_point=s.approle_mount, wrap_ttl=f"{s.wrap_ttl_s}s"
            )
        wrap = resp.get("wrap_info") or {}
        if not wrap.get("token"):
            raise SecretsRejected(f"vault write {n.secret_id_path}: response was not wrapped")
        if wrap.get("creation_path") != n.secret_id_path:
            raise SecretsRejected(f"vault write {n.secret_id_path}: wrapped at an unexpected path")
        log.info("issued bootstrap credential for agent %s (ttl %ss)", agent_id, wrap.get("ttl"))
        return BootstrapConfig(
            agent_id=n.agent_id,
            vault_addr=s.bootstrap_addr,
            role_id=role_id,
            wrapped_secret_id=wrap["token"],
            expected_creation_path=n.secret_id_path,
            approle_mount=s.approle_mount,
            kv_mount=s.kv_mount,
            kv_prefix=n.kv_prefix,
            listen_host=listen_host,
            listen_port=listen_port,
            address_file=address_file,
        )

    # --- destroy and residue -----------------------------------------------------------------------------------

    def destroy(self, agent_id: str) -> Residue:
        """Remove everything of the agent; returns what was there. Everything already gone is success.

        The role goes first so no new login can happen, then the certificate role so no new certificate can be
        issued, then the tokens (a deleted role leaves its tokens alive), then the policy, the Transit key and the KV
        keys.

        Certificates already issued are not revoked: Vault does not store them (`no_store`, so a fleet renewing
        daily does not grow its storage) and the orchestrator never sees their serials. One dies within its TTL
        (`cert_ttl_s`, at most 24 hours), names an agent id that is never reused, and its key lived only in the
        memory of a VM this destroy deletes; without a role and a token, nothing can renew it.
        """
        n = self.names(agent_id)
        s = self.settings
        found = Residue()

        role_path = f"auth/{s.approle_mount}/role/{n.role}"
        found.roles = int(self._role_exists(n)) + int(self._certificate_role_exists(n))
        with vault_errors("delete", role_path):
            self._client.auth.approle.delete_role(n.role, mount_point=s.approle_mount)
        with vault_errors("delete", f"{s.pki_mount}/roles/{n.certificate_role}"):
            self._client.secrets.pki.delete_role(n.certificate_role, mount_point=s.pki_mount)

        accessors = self._tokens.accessors_of(n)
        for accessor in accessors:
            self._tokens.revoke(accessor)
        found.tokens = len(accessors)

        found.policies = int(self._policy_exists(n))
        with vault_errors("delete", f"sys/policies/acl/{n.policy}"):
            self._client.sys.delete_policy(n.policy)

        found.keys = int(self._delete_transit_key(n))

        keys = self._kv_keys(n)
        for key in keys:
            with vault_errors("delete", f"{s.kv_mount}/metadata/{key}"):
                self._client.secrets.kv.v2.delete_metadata_and_all_versions(key, mount_point=s.kv_mount)
        found.secrets = len(keys)

        log.info("destroyed secrets of agent %s (found %s)", agent_id, found)
        return found

    def revoke_tokens(self, agent_id: str) -> int:
        """Revoke every live token of the agent (login and unused wrapping tokens), keeping its role and secrets.

        Used when an agent moves to a new VM: the old VM's credentials die, the new VM introduces itself afresh.
        """
        n = self.names(agent_id)
        accessors = self._tokens.accessors_of(n)
        for accessor in accessors:
            self._tokens.revoke(accessor)
        return len(accessors)

    def residue(self, agent_id: str) -> Residue:
        """Count what is left of the agent in Vault; vms stays 0 here."""
        n = self.names(agent_id)
        return Residue(
            secrets=len(self._kv_keys(n)),
            policies=int(self._policy_exists(n)),
            roles=int(self._role_exists(n)) + int(self._certificate_role_exists(n)),
            keys=int(self._transit_key_exists(n)),
            tokens=len(self._tokens.accessors_of(n)),
        )

    def _delete_transit_key(self, n: AgentNames) -> bool:
        s = self.settings
        path = f"{s.transit_mount}/keys/{n.transit_key}"
        if not self._transit_key_exists(n):
            return False
        with vault_errors("delete", path):
            try:
                # Transit refuses to delete a key until deletion is allowed explicitly.
                self._client.secrets.transit.update_key_configuration(
                    n.transit_key, deletion_allowed=True, mount_point=s.transit_mount
                )
                self._client.secrets.transit.delete_key(n.transit_key, mount_point=s.transit_mount)
            except hv.InvalidRequest:
                if self._transit_key_exists(n):  # "not found" from a concurrent destroy is fine; anything else not
                    raise
        return True

    def _kv_keys(self, n: AgentNames) -> list[str]:
        """Every key under the agent's prefix, recursively, relative to the mount."""
        keys: list[str] = []
        pending = [n.kv_prefix]
        while pending:
            folder = pending.pop()
            with vault_errors("list", f"{n.kv_mount}/metadata/{folder}"):
                try:
                    resp = self._client.secrets.kv.v2.list_secrets(folder, mount_point=n.kv_mount)
                except hv.InvalidPath:
                    continue
            for entry in (resp.get("data") or {}).get("keys") or []:
                (pending if entry.endswith("/") else keys).append(folder + entry)
        return sorted(keys)

    def _policy_exists(self, n: AgentNames) -> bool:
        return self._exists(f"sys/policies/acl/{n.policy}", lambda: self._client.sys.read_policy(n.policy))

    def _role_exists(self, n: AgentNames) -> bool:
        mount = self.settings.approle_mount
        return self._exists(
            f"auth/{mount}/role/{n.role}", lambda: self._client.auth.approle.read_role(n.role, mount_point=mount)
        )

    def _certificate_role_exists(self, n: AgentNames) -> bool:
        mount = self.settings.pki_mount
        return self._exists(
            f"{mount}/roles/{n.certificate_role}",
            lambda: self._client.secrets.pki.read_role(n.certificate_role, mount_point=mount),
        )

    def _transit_key_exists(self, n: AgentNames) -> bool:
        mount = self.settings.transit_mount
        return self._exists(
            f"{mount}/keys/{n.transit_key}",
            lambda: self._client.secrets.transit.read_key(n.transit_key, mount_point=mount),
        )

    _exists = staticmethod(vault_path_exists)
