"""Delete an agent's stored data rows: for the lifecycle's cleanup (its Transit key is gone, so they are useless)."""

from __future__ import annotations

from temporalio import activity

from activities.registry import _translate_errors as registry_errors
from contracts.maintenance_models import AgentDataDeleted
from contracts.models import AgentRef
from store import Registry


class AgentDataActivities:
    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    @activity.defn
    def delete_agent_data(self, ref: AgentRef) -> AgentDataDeleted:
        """Remove every stored item of the agent; none left is success (idempotent)."""
        with registry_errors("delete_agent_data"):
            items = self.registry.delete_agent_data(ref.agent_id)
        if items:
            activity.logger.info("deleted %d data item(s) of agent %s", items, ref.agent_id)
        return AgentDataDeleted(ref.agent_id, items)
