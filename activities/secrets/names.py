"""Every Vault name and path of one agent, derived from its id in one place."""

from __future__ import annotations

from dataclasses import dataclass

from activities.errors import SecretsRejected
from activities.secrets.settings import VaultSettings
from contracts.identifiers import certificate_name, kv_prefix, vault_name
from contracts.spec import SpecError, validate_agent_id

IDENTITY_KEY = "identity"


@dataclass(frozen=True)
class AgentNames:
    agent_id: str
    kv_mount: str
    transit_mount: str
    approle_mount: str
    pki_mount: str

    @classmethod
    def of(cls, agent_id: str, settings: VaultSettings) -> AgentNames:
        # Checked again here although the workflow validated it: the id is spliced into policy text and paths.
        try:
            validate_agent_id(agent_id)
        except SpecError as exc:
            raise SecretsRejected(str(exc)) from exc
        return cls(agent_id, settings.kv_mount, settings.transit_mount, settings.approle_mount, settings.pki_mount)

    @property
    def policy(self) -> str:
        return vault_name(self.agent_id)

    @property
    def role(self) -> str:
        return vault_name(self.agent_id)

    @property
    def transit_key(self) -> str:
        return vault_name(self.agent_id)

    @property
    def certificate_role(self) -> str:
        """The PKI role that issues this agent's certificates, and only for `certificate_name`."""
        return vault_name(self.agent_id)

    @property
    def certificate_name(self) -> str:
        return certificate_name(self.agent_id)

    @property
    def issue_path(self) -> str:
        return f"{self.pki_mount}/issue/{self.certificate_role}"

    @property
    def kv_prefix(self) -> str:
        """Relative to the KV mount, with the trailing slash that keeps agent `a` out of agent `ab`."""
        return kv_prefix(self.agent_id)

    @property
    def identity_path(self) -> str:
        return self.kv_prefix + IDENTITY_KEY

    @property
    def secret_id_path(self) -> str:
        """Where Vault records a wrapped SecretID of this agent as created; the bridge checks it before unwrapping."""
        return f"auth/{self.approle_mount}/role/{self.role}/secret-id"
