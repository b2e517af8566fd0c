"""LobstackClient: the typed async API backend services use to start agents and read their status.

Light on purpose: it imports the Temporal client and `contracts` only, never the workflows, activities, store or Vault
code (tests/clients/test_light_client.py), so a backend service pays about what the SDK's own import costs
(bench/import_cost.py). Workflows and their handlers are reached by name (`contracts.workflow_names`), with
`result_type=` for typed answers. Documented for its callers in docs/client.md.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, TypeVar

from temporalio.client import (
    Client,
    WorkflowExecutionStatus,
    WorkflowFailureError,
    WorkflowHandle,
    WorkflowQueryFailedError,
    WorkflowUpdateFailedError,
)
from temporalio.common import SearchAttributeKey, WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.converter import DataConverter
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from clients.pools import WarmPools
from contracts import approval_search
from contracts.approver_policy import AccountApprovalPolicy, ApproverChange, validate_change
from contracts.errors import (
    ADMISSION_REFUSED,
    AgentEnded,
    AgentExists,
    AgentNotFound,
    AgentRefused,
    ApprovalClosed,
    ApprovalNotFound,
    DecisionRefused,
    LobstackClientError,
    TemporalUnreachable,
)
from contracts.identifiers import agent_of, parse_approval_id, workflow_id
from contracts.limits import AccountLimits, LimitsChange, validate_limits_change
from contracts.models import (
    AgentPolicy,
    AgentState,
    AgentStatus,
    ApprovalDecision,
    ApprovalStatus,
    DestroyRequest,
    LifecycleInput,
    LifecycleResult,
    SkillUpdate,
)
from contracts.queues import WORKFLOW_QUEUE
from contracts.spec import (
    AgentSpec,
    SpecError,
    validate_agent_id,
    validate_skills,
    validate_spec,
    validate_tool_patterns,
)
from contracts.workflow_names import (
    ACCOUNT_LIMITS,
    ADMISSION_UPDATE,
    AGENT_LIFECYCLE,
    APPROVER_SETTINGS,
    DECIDE_UPDATE,
    DESTROY_SIGNAL,
    POLICY_QUERY,
    STATUS_QUERY,
    TOOL_APPROVAL,
    UPDATE_SKILLS_SIGNAL,
)

T = TypeVar("T")
# What a NOT_FOUND answer becomes, given how the workflow ended (None: there is no such workflow).
Explain = Callable[[str | None], Awaitable[Exception]]


@dataclass(frozen=True)
class AgentSummary:
    agent_id: str
    workflow_status: str
    started_at: datetime | None


@dataclass(frozen=True)
class PendingApproval:
    """One run that waits (or waited) for a person, read from its search attributes alone: no worker needs to answer."""

    kind: str  # agent or tool
    workflow_id: str
    agent_id: str
    account_id: str
    state: str
    deadline: datetime | None


_KIND = SearchAttributeKey.for_keyword(approval_search.APPROVAL_KIND)
_STATE = SearchAttributeKey.for_keyword(approval_search.APPROVAL_STATE)
_ACCOUNT = SearchAttributeKey.for_keyword(approval_search.ACCOUNT)
_AGENT = SearchAttributeKey.for_keyword(approval_search.AGENT_ID)
_DEADLINE = SearchAttributeKey.for_datetime(approval_search.APPROVAL_DEADLINE)


def new_agent_id(name: str) -> str:
    """`<name prefix>-<12 hex>`: readable in the UI and unique; at most 40 characters like every agent id."""
    return f"{name[:27].rstrip('-')}-{uuid.uuid4().hex[:12]}"


class LobstackClient(WarmPools):
    def __init__(self, client: Client, *, task_queue: str = WORKFLOW_QUEUE) -> None:
        self.temporal = client
        self.task_queue = task_queue

    @classmethod
    async def connect(
        cls,
        address: str,
        *,
        namespace: str = "default",
        data_converter: DataConverter | None = None,
        task_queue: str = WORKFLOW_QUEUE,
        identity: str | None = None,
    ) -> LobstackClient:
        """`data_converter`: the deployment's one (`connection.data_converter(keyring)`) when payloads are encrypted.
        `identity`: what Temporal records as the sender of this client's signals and updates (default `pid@host`);
        decisions are audited with it (deploy/approver-identity.md)."""
        try:
            client = await Client.connect(
                address,
                namespace=namespace,
                data_converter=data_converter or DataConverter.default,
                identity=identity or None,  # None: the SDK's default, pid@host
            )
        except RuntimeError as err:  # the SDK reports every connect failure this way
            raise TemporalUnreachable(address, err) from None
        return cls(client, task_queue=task_queue)

    def _handle(self, agent_id: str) -> WorkflowHandle[Any, LifecycleResult]:
        validate_agent_id(agent_id)
        return self.temporal.get_workflow_handle(workflow_id(agent_id), result_type=LifecycleResult)

    def _approval_handle(self, approval_id: str) -> WorkflowHandle[Any, ApprovalStatus]:
        return self.temporal.get_workflow_handle(approval_id, result_type=ApprovalStatus)

    # --- the one translation of "not found" ----------------------------------------------------------------------

    async def _not_found(
        self, call: Callable[[], Awaitable[T]], workflow: str, explain: Explain, *, query: bool = False
    ) -> T:
        """Run `call`; a NOT_FOUND answer about the workflow becomes `await explain(how)`.

        Temporal says NOT_FOUND both for "no such workflow" and, to signals and updates, for "already closed": then
        describe tells them apart and `how` is how it ended. A closed workflow still answers queries (a worker replays
        it), so for a query NOT_FOUND always means there is none (`how` None). Any other answer, a missing namespace
        included, is re-raised as it came.
        """
        try:
            return await call()
        except RPCError as err:
            if err.status != RPCStatusCode.NOT_FOUND or _namespace_missing(err):
                raise
            how = None if query else await self._ended(err, workflow)
            raise await explain(how) from None

    async def _ended(self, err: RPCError, workflow: str) -> str | None:
        """After a NOT_FOUND answer to a signal or an update: how the workflow ended, or None when there is none."""
        try:
            described = await self.temporal.get_workflow_handle(workflow).describe()
        except RPCError as again:
            if again.status == RPCStatusCode.NOT_FOUND and not _namespace_missing(again):
                return None
            raise
        if described.status is None or described.status == WorkflowExecutionStatus.RUNNING:
            raise err
        return described.status.name.lower()

    def _on_agent(self, agent_id: str, call: Callable[[], Awaitable[T]], *, query: bool = False) -> Awaitable[T]:
        async def explain(how: str | None) -> Exception:
            return AgentNotFound(agent_id) if how is None else AgentEnded(agent_id, how)

        return self._not_found(call, workflow_id(agent_id), explain, query=query)

    def _on_approval(self, approval_id: str, call: Callable[[], Awaitable[T]], *, query: bool = False) -> Awaitable[T]:
        async def explain(how: str | None) -> Exception:
            if how is None:
                return ApprovalNotFound(approval_id)
            return ApprovalClosed(approval_id, how, await self._outcome(approval_id))

        return self._not_found(call, approval_id, explain, query=query)

    # --- agents ----------------------------------------------------------------------------------------------------

    async def create_agent(self, spec: AgentSpec, *, requested_by: str = "") -> str:
        """Validate, assign an id if none was given, and start the lifecycle. Returns the agent id.

        `requested_by` names the requester in the Web UI's list (default: this client's Temporal identity)."""
        validate_spec(spec)
        if spec.require_approval or spec.approvers or spec.escalation_approvers:
            await self._check_approvers(spec)
        if not spec.agent_id:
            spec = replace(spec, agent_id=new_agent_id(spec.name))
        handle = await self._start_lifecycle(spec, requested_by or self.temporal.identity)
        await self._admitted(spec.agent_id, handle)
        return spec.agent_id

    async def _start_lifecycle(self, spec: AgentSpec, requester: str) -> WorkflowHandle[Any, LifecycleResult]:
        try:
            return await self.temporal.start_workflow(
                AGENT_LIFECYCLE,
                LifecycleInput(spec=spec, requested_by=requester),
                id=workflow_id(spec.agent_id),
                task_queue=self.task_queue,
                # An agent id names one agent for ever: never reuse it, even after its lifecycle closed.
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
                static_summary=_agent_summary(spec, requester),
                # Read back typed when the run ends before its admission update reaches it (a refusal).
                result_type=LifecycleResult,
            )
        except WorkflowAlreadyStartedError:
            raise AgentExists(spec.agent_id) from None

    async def _admitted(self, agent_id: str, handle: WorkflowHandle[Any, LifecycleResult]) -> None:
        """Wait for admission, the lifecycle's first step: the account's quotas checked and the agent registered.

        A refused agent ends at once with nothing created, and the caller hears the quota and the usage. A lifecycle
        that fails for another reason is the caller's to learn from `status` or `result`, as after any start."""
        try:
            await handle.execute_update(ADMISSION_UPDATE, result_type=AgentStatus)
            return
        except WorkflowUpdateFailedError as err:
            cause = err.cause
            if isinstance(cause, ApplicationError) and cause.type == ADMISSION_REFUSED:
                raise AgentRefused(agent_id, cause.message) from None
            return
        except RPCError as err:
            if err.status != RPCStatusCode.NOT_FOUND or _namespace_missing(err):
                raise
        # It ended before the update reached it: a refusal ends a run that soon, or a failure.
        try:
            result = await handle.result()
        except WorkflowFailureError:
            return
        if result.state == AgentState.REJECTED:
            raise AgentRefused(agent_id, result.reason)

    async def change_limits(self, change: LimitsChange) -> AccountLimits:
        """Show or change an account's quotas and agent lifetimes (in the registry, through the workers)."""
        validate_limits_change(change)
        try:
            limits: AccountLimits = await self.temporal.execute_workflow(
                ACCOUNT_LIMITS,
                change,
                id=f"limits-{change.account_id}-{uuid.uuid4().hex[:12]}",
                task_queue=self.task_queue,
                result_type=AccountLimits,
            )
        except WorkflowFailureError as err:
            raise LobstackClientError(f"limits of {change.account_id}: {_failure_text(err)}") from None
        return limits

    async def _check_approvers(self, spec: AgentSpec) -> None:
        """Refuse, before anything starts, an agent no approver of its account could approve."""
        account = spec.account_id
        policy = await self.approval_policy(account)
        if spec.require_approval and not policy.approvers:
            raise SpecError(
                "approvers",
                f"account {account} has no approvers, so no one could approve this agent: add one first with "
                f"`lobstack approvers add --account {account} NAME`",
            )
        for field_name in ("approvers", "escalation_approvers"):
            outside = [n for n in getattr(spec, field_name) if n not in policy.approvers]
            if outside:
                raise SpecError(
                    field_name,
                    f"{', '.join(outside)} not approvers of account {account}; an agent may only narrow the "
                    f"account's list ({', '.join(policy.approvers) or 'empty'})",
                )

    async def change_approvers(self, change: ApproverChange) -> AccountApprovalPolicy:
        """Show or change an account's approvers and approval policy (in the registry, through the workers)."""
        validate_change(change)
        try:
            policy: AccountApprovalPolicy = await self.temporal.execute_workflow(
                APPROVER_SETTINGS,
                change,
                id=f"approvers-{change.account_id}-{uuid.uuid4().hex[:12]}",
                task_queue=self.task_queue,
                result_type=AccountApprovalPolicy,
            )
        except WorkflowFailureError as err:
            raise LobstackClientError(f"approvers of {change.account_id}: {_failure_text(err)}") from None
        return policy

    async def approval_policy(self, account_id: str) -> AccountApprovalPolicy:
        return await self.change_approvers(ApproverChange(account_id=account_id))

    async def add_approver(self, account_id: str, name: str) -> AccountApprovalPolicy:
        return await self.change_approvers(ApproverChange(account_id=account_id, action="add", name=name))

    async def remove_approver(self, account_id: str, name: str) -> AccountApprovalPolicy:
        return await self.change_approvers(ApproverChange(account_id=account_id, action="remove", name=name))

    async def status(self, agent_id: str, *, timeout_s: float | None = None) -> AgentStatus:
        """The lifecycle's status query; `timeout_s` gives up sooner than the server's own limit (30 s on the
        reference server) when no worker answers."""
        handle = self._handle(agent_id)
        rpc_timeout = None if timeout_s is None else timedelta(seconds=timeout_s)
        return await self._on_agent(
            agent_id,
            lambda: handle.query(STATUS_QUERY, result_type=AgentStatus, rpc_timeout=rpc_timeout),
            query=True,
        )

    async def policy(self, agent_id: str) -> AgentPolicy:
        handle = self._handle(agent_id)
        return await self._on_agent(agent_id, lambda: handle.query(POLICY_QUERY, result_type=AgentPolicy), query=True)

    async def _signal(self, agent_id: str, signal: str, arg: object) -> None:
        handle = self._handle(agent_id)
        await self._on_agent(agent_id, lambda: handle.signal(signal, arg))

    async def approve(self, agent_id: str, *, approver: str, reason: str = "") -> AgentStatus:
        return await self._decide(agent_id, ApprovalDecision(approver=approver, reason=reason, approved=True))

    async def reject(self, agent_id: str, *, approver: str, reason: str = "") -> AgentStatus:
        return await self._decide(agent_id, ApprovalDecision(approver=approver, reason=reason, approved=False))

    async def _decide(self, agent_id: str, decision: ApprovalDecision) -> AgentStatus:
        """Through the `decide` update, so a refused approver hears why (the Web UI sends the signals instead)."""
        _require("approver", decision.approver)
        handle = self._handle(agent_id)
        try:
            return await self._on_agent(
                agent_id, lambda: handle.execute_update(DECIDE_UPDATE, decision, result_type=AgentStatus)
            )
        except WorkflowUpdateFailedError as err:
            raise DecisionRefused(agent_id, _refusal(err)) from None

    async def destroy(self, agent_id: str, *, requested_by: str = "", reason: str = "") -> None:
        await self._signal(agent_id, DESTROY_SIGNAL, DestroyRequest(requested_by=requested_by, reason=reason))

    async def result(self, agent_id: str) -> LifecycleResult:
        """Wait for the lifecycle to end. A failed agent raises WorkflowFailureError (after its cleanup ran)."""
        return await self._handle(agent_id).result()

    async def wait_for(
        self,
        agent_id: str,
        states: Collection[AgentState],
        *,
        timeout_s: float = 120.0,
        max_interval_s: float = 1.0,
    ) -> AgentStatus:
        """Poll the status query until the agent reaches one of `states`; raises TimeoutError with the last status.

        `max_interval_s` bounds the backoff: a measurement (the benches) wants it small, a CLI wants it gentle.
        """
        deadline = time.monotonic() + timeout_s
        delay = min(0.05, max_interval_s)
        while True:
            current = await self.status(agent_id)
            if current.state in states:
                return current
            if current.state.terminal:
                raise LobstackClientError(f"agent {agent_id} ended {current.state.value}: {current.last_error}")
            if time.monotonic() >= deadline:
                raise TimeoutError(f"agent {agent_id} still {current.state.value} after {timeout_s:.0f}s")
            await asyncio.sleep(min(delay, max(deadline - time.monotonic(), 0.0)))
            delay = min(delay * 1.5, max_interval_s)

    async def update_skills(
        self, agent_id: str, skills: list[str], *, approval_required: list[str] | None = None, requested_by: str = ""
    ) -> None:
        validate_skills(skills)
        if approval_required is not None:
            validate_tool_patterns(approval_required)
        update = SkillUpdate(skills=skills, approval_required=approval_required, requested_by=requested_by)
        await self._signal(agent_id, UPDATE_SKILLS_SIGNAL, update)

    async def list_agents(self, *, running_only: bool = False) -> list[AgentSummary]:
        query = f"WorkflowType = '{AGENT_LIFECYCLE}'"
        if running_only:
            query += " AND ExecutionStatus = 'Running'"
        found = []
        async for wf in self.temporal.list_workflows(query):
            status = wf.status.name.lower() if isinstance(wf.status, WorkflowExecutionStatus) else "unknown"
            found.append(AgentSummary(agent_of(wf.id) or wf.id, status, wf.start_time))
        return found

    # --- tool approvals -------------------------------------------------------------------------------------------

    async def list_approvals(self, *, pending_only: bool = True) -> list[ApprovalStatus]:
        """Approvals awaiting a decision (open ToolApproval workflows), with their current status."""
        # This deployment's approvals only: another queue's may have no worker to answer the status query.
        query = f"WorkflowType = '{TOOL_APPROVAL}' AND TaskQueue = '{self.task_queue}'"
        if pending_only:
            query += " AND ExecutionStatus = 'Running'"
        found = []
        async for wf in self.temporal.list_workflows(query):
            handle = self._approval_handle(wf.id)
            try:
                found.append(
                    await handle.query(STATUS_QUERY, result_type=ApprovalStatus, rpc_timeout=timedelta(seconds=5))
                )
            except (RPCError, WorkflowQueryFailedError):
                continue  # one unanswerable approval must not hide the others
        return found

    async def pending_approvals(self, *, all_states: bool = False) -> list[PendingApproval]:
        """Agent and tool approvals found by the documented query (contracts/approval_search.py), the one the Web UI's
        list uses; with `all_states`, decided ones too. Older runs that published only their state show kind `tool`."""
        query = approval_search.ALL_APPROVALS_QUERY if all_states else approval_search.PENDING_APPROVALS_QUERY
        found = []
        async for wf in self.temporal.list_workflows(query):
            attrs = wf.typed_search_attributes
            found.append(
                PendingApproval(
                    kind=attrs.get(_KIND) or ("agent" if wf.workflow_type == AGENT_LIFECYCLE else "tool"),
                    workflow_id=wf.id,
                    agent_id=attrs.get(_AGENT) or agent_of(wf.id) or "",
                    account_id=attrs.get(_ACCOUNT) or "",
                    state=attrs.get(_STATE) or "",
                    deadline=attrs.get(_DEADLINE),
                )
            )
        return found

    async def approval(self, approval_id: str) -> ApprovalStatus:
        validate_approval_id(approval_id)
        handle = self._approval_handle(approval_id)
        return await self._on_approval(
            approval_id, lambda: handle.query(STATUS_QUERY, result_type=ApprovalStatus), query=True
        )

    async def decide_approval(
        self, approval_id: str, *, approver: str, approved: bool, reason: str = ""
    ) -> ApprovalStatus:
        """Approve or reject through the `decide` update: a refused approver gets the refusal back as an error."""
        validate_approval_id(approval_id)
        _require("approver", approver)
        handle = self._approval_handle(approval_id)
        decision = ApprovalDecision(approver=approver, reason=reason, approved=approved)
        try:
            return await self._on_approval(
                approval_id, lambda: handle.execute_update(DECIDE_UPDATE, decision, result_type=ApprovalStatus)
            )
        except WorkflowUpdateFailedError as err:
            raise DecisionRefused(approval_id, _refusal(err)) from None

    async def _outcome(self, approval_id: str) -> str:
        """How a closed approval ended, in words ("cancelled: agent ... is destroyed: ..."), when a worker can say."""
        try:
            status = await self._approval_handle(approval_id).query(
                STATUS_QUERY, result_type=ApprovalStatus, rpc_timeout=timedelta(seconds=5)
            )
        except (RPCError, WorkflowQueryFailedError):
            return ""
        return f"{status.state.value}: {status.reason}" if status.reason else status.state.value


def validate_approval_id(approval_id: object) -> None:
    # The one rule the bridge and the gateway use: approval-<agent_id>-<request_id>, split at the last '-'.
    if parse_approval_id(approval_id) is None:
        raise SpecError(
            "approval_id", f"{approval_id!r:.80} is not allowed; looks like approval-<agent_id>-<request_id>"
        )


def _failure_text(err: WorkflowFailureError) -> str:
    """The innermost failure's message: the workflow's or activity's own words, never a stack trace."""
    cause: BaseException = err
    while cause.__cause__ is not None:
        cause = cause.__cause__
    return str(getattr(cause, "message", cause))


def _refusal(err: WorkflowUpdateFailedError) -> str:
    """The workflow's words for a refused update (its ApplicationError message)."""
    cause = err.cause
    return str(getattr(cause, "message", cause))


def _namespace_missing(err: RPCError) -> bool:
    """Temporal answers NOT_FOUND for an unknown namespace too ("Namespace x is not found."): not about a workflow."""
    return err.message.lower().startswith("namespace ")


def _require(field_name: str, value: str) -> None:
    if not value or not value.strip():
        raise SpecError(field_name, "is required")
    if len(value) > 200:
        raise SpecError(field_name, "must be at most 200 characters")


__all__ = [
    "AgentEnded",
    "AgentExists",
    "AgentNotFound",
    "AgentRefused",
    "AgentSummary",
    "ApprovalClosed",
    "ApprovalNotFound",
    "DecisionRefused",
    "LobstackClient",
    "LobstackClientError",
    "TemporalUnreachable",
    "new_agent_id",
    "validate_approval_id",
]


def _agent_summary(spec: AgentSpec, requester: str) -> str:
    """The Web UI list's one line: what the run waits for first, then agent, account, placement and requester."""
    what = "Needs approval" if spec.require_approval else "Agent"
    return (
        f"{what}: agent {spec.name} ({spec.agent_id}), account {spec.account_id}, "
        f"{spec.provider}/{spec.region}/{spec.size}, requested by {requester or 'unknown'}"
    )
