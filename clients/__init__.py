"""What backend services use: `LobstackClient` (docs/client.md) and the errors it raises.

Importing this package loads the Temporal SDK and `contracts` only (tests/clients/test_light_client.py). The `lobstack`
command line lives in `clients.cli` and its siblings; it wires the whole service and is imported only when run.
"""

from clients.client import (
    AgentEnded,
    AgentExists,
    AgentNotFound,
    AgentSummary,
    ApprovalClosed,
    ApprovalNotFound,
    DecisionRefused,
    LobstackClient,
    LobstackClientError,
    PendingApproval,
    TemporalUnreachable,
    new_agent_id,
    validate_approval_id,
)

__all__ = [
    "AgentEnded",
    "AgentExists",
    "AgentNotFound",
    "AgentSummary",
    "ApprovalClosed",
    "ApprovalNotFound",
    "DecisionRefused",
    "LobstackClient",
    "LobstackClientError",
    "PendingApproval",
    "TemporalUnreachable",
    "new_agent_id",
    "validate_approval_id",
]
