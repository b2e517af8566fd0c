"""The agent-side process: secure introduction to Vault, `/health` for the orchestrator, and the tools' policy decision
point (`POST /tools/{tool}/authorize`, skills and approvals through the gateway) for the agent's own process only, on a
Unix socket (`bridge.agent_api`). Runs on every VM: standard library + hvac (and requests, which hvac brings).

Run it as `python -m bridge --config PATH`; the pieces live in `bridge.agent`, `bridge.introduction`, `bridge.server`
(health), `bridge.health`, `bridge.agent_api` and `bridge.tools`. What it shares with the orchestrator (the bootstrap
config, the id rules, the health values) is in `contracts`, which it imports and nothing else of ours. This `__init__`
imports nothing.
"""

__all__ = ["agent", "agent_api", "health", "introduction", "server", "tools"]
