"""A lifecycle's claim on a warm pool: the pool workflow's `claim` update, sent from an activity.

A workflow cannot send an update to another workflow, so this activity does. The update id is the agent's
(`claim-<agent_id>`), so a retried activity gets the answer the first attempt got; the pool also answers the same
agent with the same VM across its own continue-as-new. No pool for the placement, or one that is closing, answers
with no VM and why: the lifecycle then creates one cold, and says so.
"""

from __future__ import annotations

from temporalio import activity
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.service import RPCError, RPCStatusCode

from contracts.pool import POOL_WORKFLOW_PREFIX, ClaimRequest, PoolClaim
from contracts.workflow_names import POOL_CLAIM_UPDATE

__all__ = ["PoolClaimActivities"]

# The pool's run is gone (never started, deleted, or between runs a moment): nothing to claim from.
_NO_POOL = frozenset({RPCStatusCode.NOT_FOUND, RPCStatusCode.FAILED_PRECONDITION})


class PoolClaimActivities:
    def __init__(self, temporal: Client) -> None:
        self.temporal = temporal

    @activity.defn
    async def claim_pool_vm(self, request: ClaimRequest) -> PoolClaim:
        handle = self.temporal.get_workflow_handle(POOL_WORKFLOW_PREFIX + request.pool_id)
        try:
            claim: PoolClaim = await handle.execute_update(
                POOL_CLAIM_UPDATE,
                ClaimRequest(request.agent_id, request.account_id),
                id=f"claim-{request.agent_id}",
                result_type=PoolClaim,
            )
        except RPCError as err:
            if err.status not in _NO_POOL:
                raise  # the server is unwell: retried
            return PoolClaim(None, request.pool_id, f"no warm pool {request.pool_id} is running")
        except WorkflowUpdateFailedError as err:
            # The pool refused (it is being deleted, say): a cold create, not a failed lifecycle.
            return PoolClaim(None, request.pool_id, f"pool {request.pool_id} refused the claim: {err.cause}")
        return claim
