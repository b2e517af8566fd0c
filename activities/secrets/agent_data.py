"""Agent data the service keeps for an agent (customer credentials, configuration), stored as Transit ciphertext.

The plaintext exists only in the caller's memory and in the Vault request; the database holds the ciphertext and the
key version it was made with. KeyRotation rewraps these rows; destroy and the orphan sweep delete them.
"""

from __future__ import annotations

import re

from activities.secrets.agent_vault import AgentVault
from contracts.spec import SpecError
from store import Registry

__all__ = ["MAX_PLAINTEXT_BYTES", "AgentDataMissing", "AgentDataStore", "validate_data_name"]

MAX_PLAINTEXT_BYTES = 64 * 1024
_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,62}$")


class AgentDataMissing(LookupError):
    """No item of that name for that agent (or not under that account)."""


def validate_data_name(name: str) -> None:
    if not _NAME.fullmatch(name):
        raise SpecError(
            "name", f"{name!r:.80} is not allowed; use 1-63 of a-z, 0-9, '.', '_', '-', starting alphanumeric"
        )


class AgentDataStore:
    """put/get of an agent's data through Vault Transit. Synchronous (hvac and SQLAlchemy are); thread-safe."""

    def __init__(self, vault: AgentVault, registry: Registry) -> None:
        self.vault = vault
        self.registry = registry

    def put(self, agent_id: str, account_id: str, name: str, plaintext: bytes) -> int:
        """Store `plaintext` encrypted with the agent's key; returns the key version used.

        The agent must be registered under `account_id` and not finished. A KeyRotation running meanwhile may raise
        the key's min_decryption_version after we encrypted but before our row was visible to its rewrap: we still hold
        the plaintext, so we check afterwards and encrypt again at the latest version (never left unreadable).
        """
        validate_data_name(name)
        if not isinstance(plaintext, bytes):
            raise SpecError("value", "must be bytes")
        if len(plaintext) > MAX_PLAINTEXT_BYTES:
            raise SpecError("value", f"is {len(plaintext)} bytes; at most {MAX_PLAINTEXT_BYTES} are allowed")
        agent = self.registry.get(agent_id)
        if agent is None or agent.account_id != account_id:
            raise SpecError("agent_id", f"agent {agent_id!r} is not registered under account {account_id!r}")
        if agent.state.terminal:
            raise SpecError("agent_id", f"agent {agent_id!r} is {agent.state.value}; its data cannot change")
        # Before its secrets are minted an agent has no key, and encrypting would create one (with a token allowed
        # to) that nothing ever deletes if the agent is then rejected: refuse instead.
        if self.vault.transit_key(agent_id) is None:
            raise SpecError(
                "agent_id", f"agent {agent_id!r} is {agent.state.value} and has no key yet; store data once it runs"
            )
        for _ in range(3):
            sealed = self.vault.encrypt(agent_id, plaintext)
            self.registry.put_agent_data(
                agent_id=agent_id,
                account_id=account_id,
                name=name,
                ciphertext=sealed.ciphertext,
                key_version=sealed.key_version,
            )
            key = self.vault.transit_key(agent_id)
            if key is None or sealed.key_version >= key.min_decryption_version:
                return sealed.key_version
        raise SpecError("value", f"agent {agent_id!r}: its key kept rotating while storing {name!r}; try again")

    def get(self, agent_id: str, name: str, *, account_id: str | None = None) -> bytes:
        """The plaintext of one item; AgentDataMissing when absent (or stored under another account)."""
        validate_data_name(name)
        row = self.registry.agent_data(agent_id, name)
        if row is None or (account_id is not None and row.account_id != account_id):
            raise AgentDataMissing(f"agent {agent_id!r} has no data named {name!r}")
        return self.vault.decrypt(agent_id, row.ciphertext)

    def names(self, agent_id: str) -> list[str]:
        return [row.name for row in self.registry.agent_data_of(agent_id)]

    def delete_all(self, agent_id: str) -> int:
        return self.registry.delete_agent_data(agent_id)
