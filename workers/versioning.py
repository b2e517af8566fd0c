"""Worker Versioning around the workers: the runner for workers that are not versioned, and making a Worker
Deployment Version current (what `temporal worker deployment set-current-version` does; docs/upgrades.md).

Each workflow declares its behavior on `@workflow.defn` (pinned lifecycles and approvals, auto-upgrading scheduled
runs). The server refuses a workflow task completed with a behavior by a worker that is not versioned ("versioning
behavior cannot be specified without deployment options being set with versioned mode"), and the SDK sends the
declared one whatever the worker's mode: `UnversionedRunner` takes it off the completions of such workers, so the
same workflow code runs in tests and development without versioning.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import temporalio.workflow
from temporalio.api.workflowservice.v1 import SetWorkerDeploymentCurrentVersionRequest
from temporalio.bridge.proto.workflow_activation import WorkflowActivation
from temporalio.bridge.proto.workflow_completion import WorkflowActivationCompletion
from temporalio.client import Client
from temporalio.common import WorkerDeploymentVersion
from temporalio.converter import SerializationContext, StorageDriverStoreContext
from temporalio.service import RPCError, RPCStatusCode
from temporalio.worker import WorkflowInstance, WorkflowInstanceDetails, WorkflowRunner
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner

__all__ = ["UnversionedRunner", "set_current_version"]


class _WithoutBehavior(WorkflowInstance):
    """A workflow instance whose completions carry no versioning behavior."""

    def __init__(self, inner: WorkflowInstance) -> None:
        self._inner = inner

    def activate(self, act: WorkflowActivation) -> WorkflowActivationCompletion:
        completion = self._inner.activate(act)
        if completion.HasField("successful"):
            completion.successful.ClearField("versioning_behavior")
        return completion

    # The command info's type lives in a private module of the SDK; it is only handed on.
    def get_serialization_context(self, command_info: Any) -> SerializationContext | None:
        return self._inner.get_serialization_context(command_info)

    def get_external_store_context(self, command_info: Any) -> StorageDriverStoreContext:
        return self._inner.get_external_store_context(command_info)

    def get_info(self) -> temporalio.workflow.Info:
        return self._inner.get_info()

    def get_thread_id(self) -> int | None:
        return self._inner.get_thread_id()


@dataclass(frozen=True)
class UnversionedRunner(WorkflowRunner):
    """The sandbox (or `inner`), for a worker without Worker Versioning: declared behaviors are not sent."""

    inner: WorkflowRunner = field(default_factory=SandboxedWorkflowRunner)

    def prepare_workflow(self, defn: temporalio.workflow._Definition) -> None:
        self.inner.prepare_workflow(defn)

    def create_instance(self, det: WorkflowInstanceDetails) -> WorkflowInstance:
        return _WithoutBehavior(self.inner.create_instance(det))

    def set_worker_level_failure_exception_types(self, types: Sequence[type[BaseException]]) -> None:
        self.inner.set_worker_level_failure_exception_types(types)


# Until the server has registered a version (its workers' first polls reach the deployment asynchronously) it
# answers "not found" or "no pollers"; these, and the transient ones, mean "ask again".
_NOT_YET = frozenset(
    {
        RPCStatusCode.NOT_FOUND,
        RPCStatusCode.FAILED_PRECONDITION,
        RPCStatusCode.CANCELLED,
        RPCStatusCode.UNAVAILABLE,
        RPCStatusCode.DEADLINE_EXCEEDED,
        RPCStatusCode.RESOURCE_EXHAUSTED,
    }
)


async def set_current_version(
    client: Client, version: WorkerDeploymentVersion, *, identity: str = "lobstack", timeout_s: float = 30
) -> None:
    """Make `version` its deployment's Current Version: new workflows start on it, auto-upgrade ones move to it, and
    pinned ones stay where they are. Waits (up to `timeout_s`) until the server knows the version from its workers'
    polls; start them first."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    delay = 0.05
    request = SetWorkerDeploymentCurrentVersionRequest(
        namespace=client.namespace,
        deployment_name=version.deployment_name,
        build_id=version.build_id,
        identity=identity,
    )
    while True:
        try:
            await client.workflow_service.set_worker_deployment_current_version(request)
            return
        except RPCError as err:
            if err.status not in _NOT_YET or loop.time() > deadline:
                raise
        await asyncio.sleep(delay)
        delay = min(delay * 2, 0.5)
