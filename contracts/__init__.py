"""The contracts every side agrees on: messages, specs and their validation, identifiers, regions and placements, the
bootstrap configuration, health values and the errors callers see.

Standard library only, at import and below (tests/test_layers.py checks it): the bridge ships these modules to the VM,
the client imports them without the worker, and every other package imports them downward. Modules:
`contracts.models` (workflow messages), `contracts.maintenance_models`, `contracts.spec` (AgentSpec and its
validation), `contracts.identifiers` (agent, approval, workflow, VM and Vault names), `contracts.regions`,
`contracts.bootstrap` (what a VM receives), `contracts.health`, `contracts.queues`, `contracts.workflow_names` and
`contracts.messages` (decoding a message of any shape without failing a workflow task).

This `__init__` imports none of them, so `import contracts.identifiers` costs only that module.
"""

__all__ = [
    "bootstrap",
    "health",
    "identifiers",
    "maintenance_models",
    "messages",
    "models",
    "queues",
    "regions",
    "spec",
    "workflow_names",
]
