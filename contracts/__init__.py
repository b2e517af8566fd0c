"""The contracts every side agrees on: messages, specs and their validation, identifiers, regions and placements, the
bootstrap configuration, health values and the errors callers see.

Standard library only, at import and below (tests/test_layers.py and tests/clients/test_light_client.py check it): the
bridge ships these modules to the VM, the client imports them without the worker, and every other package imports
them downward. Modules:
- `models`, `maintenance_models`: the workflows' messages; `spec`: AgentSpec and its validation;
- `identifiers`: agent, approval, workflow, VM and Vault names; `regions`: regions, locations and plans;
- `bootstrap`: what a VM receives; `health`: the bridge's status values; `errors`: what callers catch;
- `firewall`: the rule set of every agent's provider firewall, and its settings;
- `queues`, `workflow_names`: task queues and the names workflows and handlers are reached by;
- `messages`: decoding a message of any shape without failing a workflow task;
- `webhooks`: approval notices, their wire formats and their signature.

This `__init__` imports none of them, so `import contracts.identifiers` costs only that module.
"""

__all__ = [
    "bootstrap",
    "errors",
    "firewall",
    "health",
    "identifiers",
    "maintenance_models",
    "messages",
    "models",
    "queues",
    "regions",
    "spec",
    "webhooks",
    "workflow_names",
]
