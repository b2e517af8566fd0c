"""The workflows: deterministic code only, reaching activities through references passed through the sandbox.

- `agent_lifecycle`: `AgentLifecycleWorkflow` (one agent from validation to the last deleted secret);
- `tool_approval`: `ToolApprovalWorkflow` (a human decides a gated tool run);
- `key_rotation`, `orphan_sweep`, `fleet_health`: the scheduled maintenance workflows;
- `decisions`, `inputs`: pure helpers of the lifecycle.

Their messages live in `contracts`, their names in `contracts.workflow_names`. This `__init__` imports nothing: the
sandbox imports each workflow module on its own, and a caller reaching a workflow by name needs none of them.
"""

__all__ = ["agent_lifecycle", "decisions", "fleet_health", "inputs", "key_rotation", "orphan_sweep", "tool_approval"]
