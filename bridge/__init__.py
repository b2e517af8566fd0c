"""The agent-side process: secure introduction to Vault, `/health` for the orchestrator, and the tools' policy decision
point (`POST /tools/{tool}/authorize`, skills and approvals through the gateway) for the agent's own process only, on a
Unix socket (`bridge.agent_api`). Runs on every VM: standard library + hvac (and requests, which hvac brings).

Kept import-light on purpose: the orchestrator imports `contracts.bootstrap` for the bootstrap contract. Run it as
`python -m bridge --config PATH`; the pieces live in `bridge.agent`, `bridge.introduction`, `bridge.server` (health),
`bridge.agent_api` and `bridge.tools`. `contracts.identifiers` holds the id rules the gateway shares (standard library
only).
"""
