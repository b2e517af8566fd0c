"""The errors a caller of the service sees, raised by `LobstackClient` (clients/client.py) and documented for its
callers in docs/client.md. Standard library only, so any caller can catch them without importing the client.

    LobstackClientError
    ├── TemporalUnreachable      connect: Temporal cannot be reached
    ├── AgentExists              create_agent: the agent id is taken, for ever
    ├── AgentNotFound            no lifecycle with that agent id
    │   └── AgentEnded           the lifecycle exists but has ended (`how`)
    ├── ApprovalNotFound         no approval with that id
    │   └── ApprovalClosed       the approval has ended (`how`, `outcome`)
    └── DecisionRefused          the workflow refused a decision (`why`)

Invalid input raises `contracts.spec.SpecError` (a ValueError naming the field) before anything is sent.
"""

from __future__ import annotations


class LobstackClientError(Exception):
    """Base of every error the client raises of its own."""


class TemporalUnreachable(LobstackClientError):
    def __init__(self, address: str, err: Exception) -> None:
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        super().__init__(f"cannot reach Temporal at {address} ({reason}); is `lobstack dev` or a cluster running?")


class AgentExists(LobstackClientError):
    def __init__(self, agent_id: str) -> None:
        super().__init__(f"agent_id: {agent_id!r} is already taken; choose another id or leave it empty")
        self.agent_id = agent_id


# The failure type a lifecycle's `admission` update refuses with: activities.errors.AdmissionRefused's name.
ADMISSION_REFUSED = "AdmissionRefused"


class AgentRefused(LobstackClientError):
    """The account's quotas or lifetime limits refused the agent at admission; nothing was created."""

    def __init__(self, agent_id: str, why: str) -> None:
        super().__init__(f"agent {agent_id} refused: {why}")
        self.agent_id = agent_id
        self.why = why


class ApprovalNotFound(LobstackClientError):
    def __init__(self, approval_id: str) -> None:
        super().__init__(f"approval_id: no approval {approval_id!r}")


class DecisionRefused(LobstackClientError):
    def __init__(self, approval_id: str, why: str) -> None:
        super().__init__(f"decision on {approval_id} refused: {why}")
        self.why = why


class AgentNotFound(LobstackClientError):
    def __init__(self, agent_id: str) -> None:
        super().__init__(f"agent_id: no agent {agent_id!r}")
        self.agent_id = agent_id


class AgentEnded(AgentNotFound):
    """The agent's lifecycle exists but is closed: it takes no more signals, updates or decisions."""

    def __init__(self, agent_id: str, how: str) -> None:
        LobstackClientError.__init__(
            self, f"agent {agent_id!r} has already ended (workflow {how}); it takes no more requests"
        )
        self.agent_id = agent_id
        self.how = how


class ApprovalClosed(ApprovalNotFound):
    """The approval exists but is closed: it was decided, it expired, or it was cancelled because its agent is gone."""

    def __init__(self, approval_id: str, how: str, outcome: str = "") -> None:
        said = outcome or "it was decided, it expired, or its agent is gone"
        LobstackClientError.__init__(
            self, f"approval {approval_id!r} is already closed (workflow {how}; {said}): no decision can change it"
        )
        self.approval_id = approval_id
        self.how = how
        self.outcome = outcome


__all__ = [
    "ADMISSION_REFUSED",
    "AgentEnded",
    "AgentExists",
    "AgentNotFound",
    "AgentRefused",
    "ApprovalClosed",
    "ApprovalNotFound",
    "DecisionRefused",
    "LobstackClientError",
    "TemporalUnreachable",
]
