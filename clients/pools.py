"""Warm pools for `LobstackClient`: set, show, list and delete the WarmPool workflows (workflows/warm_pool.py).

One pool per (provider, region, size), its workflow id derived from the three (contracts/pool.py), so `set` starts the
pool or resizes the running one, and every call names the pool the same way.
"""

from __future__ import annotations

from temporalio.client import Client, WorkflowExecutionStatus, WorkflowFailureError, WorkflowUpdateFailedError
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from contracts.errors import LobstackClientError
from contracts.pool import (
    DEFAULT_MAX_IDLE_S,
    PoolInput,
    PoolKey,
    PoolSize,
    PoolStatus,
    PoolTuning,
    validate_pool_key,
)
from contracts.pool import validate_pool_size as _validate_size
from contracts.workflow_names import POOL_DELETE_UPDATE, POOL_RESIZE_UPDATE, STATUS_QUERY, WARM_POOL

__all__ = ["PoolNotFound", "WarmPools"]

_RUNNING_POOLS = f'WorkflowType = "{WARM_POOL}" AND ExecutionStatus = "Running"'


class PoolNotFound(LobstackClientError):
    def __init__(self, key: PoolKey) -> None:
        super().__init__(f"no warm pool {key} is running; start one with `lobstack pool set`")
        self.key = key


class WarmPools:
    """The pool calls of `LobstackClient` (it supplies `temporal` and `task_queue`)."""

    temporal: Client
    task_queue: str

    async def set_pool(
        self,
        provider: str,
        region: str,
        size: str,
        *,
        min: int,
        max: int,
        max_idle_s: int = DEFAULT_MAX_IDLE_S,
        tuning: PoolTuning | None = None,
    ) -> PoolStatus:
        """Start the pool with this size, or resize the running one (which also ends a pause after failures).
        `tuning` (backoffs, probe period, claim grace) applies when the pool starts."""
        key = validate_pool_key(provider, region, size)
        want = PoolSize(min, max, max_idle_s)
        _validate_size(want)
        try:
            await self.temporal.start_workflow(
                WARM_POOL,
                PoolInput(key, want, tuning=tuning or PoolTuning()),
                id=key.workflow_id,
                task_queue=self.task_queue,
            )
        except WorkflowAlreadyStartedError:
            handle = self.temporal.get_workflow_handle(key.workflow_id)
            try:
                status: PoolStatus = await handle.execute_update(POOL_RESIZE_UPDATE, want, result_type=PoolStatus)
            except WorkflowUpdateFailedError as err:
                raise LobstackClientError(f"pool {key}: {err.cause}") from None
            return status
        return await self.pool_status(provider, region, size)

    async def pool_status(self, provider: str, region: str, size: str) -> PoolStatus:
        key = validate_pool_key(provider, region, size)
        handle = self.temporal.get_workflow_handle(key.workflow_id)
        try:
            # A closed pool still answers queries with its last books: it is no pool any more.
            if (await handle.describe()).status != WorkflowExecutionStatus.RUNNING:
                raise PoolNotFound(key)
            status: PoolStatus = await handle.query(STATUS_QUERY, result_type=PoolStatus)
        except RPCError as err:
            if err.status == RPCStatusCode.NOT_FOUND:
                raise PoolNotFound(key) from None
            raise
        return status

    async def list_pools(self) -> list[PoolStatus]:
        """Every running pool's status, in pool id order."""
        found: list[PoolStatus] = []
        async for execution in self.temporal.list_workflows(_RUNNING_POOLS):
            try:
                status: PoolStatus = await self.temporal.get_workflow_handle(execution.id).query(
                    STATUS_QUERY, result_type=PoolStatus
                )
            except RPCError as err:
                if err.status == RPCStatusCode.NOT_FOUND:  # ended since it was listed
                    continue
                raise
            found.append(status)
        return sorted(found, key=lambda s: s.pool_id)

    async def delete_pool(self, provider: str, region: str, size: str, *, wait: bool = True) -> PoolStatus:
        """Delete every VM of the pool (and its pool identities) and end it; `wait`: until all is verified gone."""
        key = validate_pool_key(provider, region, size)
        handle = self.temporal.get_workflow_handle(key.workflow_id, result_type=PoolStatus)
        try:
            status: PoolStatus = await handle.execute_update(POOL_DELETE_UPDATE, result_type=PoolStatus)
        except RPCError as err:
            if err.status == RPCStatusCode.NOT_FOUND:
                raise PoolNotFound(key) from None
            raise
        if not wait:
            return status
        try:
            final: PoolStatus = await handle.result()
        except WorkflowFailureError as err:
            raise LobstackClientError(f"pool {key}: {err.cause}") from None
        return final
