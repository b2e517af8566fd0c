"""The agent-side process: secure introduction to Vault and `/health`. Runs on every VM: standard library + hvac.

Kept import-light on purpose: the orchestrator imports `bridge.config` for the bootstrap contract. Run it as
`python -m bridge --config PATH`; the pieces live in `bridge.agent`, `bridge.introduction` and `bridge.server`.
"""
