"""AgentLifecycle: one agent's whole life as a durable workflow.

validate -> approval gate (if asked) -> mint secrets -> create VM -> wait running -> health check -> running
-> destroy: delete VM, delete every secret, revoke tokens, verify nothing is left.

Any failure or cancellation after the approval gate runs the same cleanup, shielded from cancellation, with activities
retried until they succeed. The workflow carries references only; the bootstrap credential is minted inside the create
activity and never passes through here.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.common import SearchAttributeUpdate, VersioningBehavior
from temporalio.exceptions import ActivityError, ApplicationError, is_cancelled_exception
from temporalio.workflow import ActivityCancellationType

from contracts.workflow_names import ADMISSION_UPDATE, AGENT_LIFECYCLE

with workflow.unsafe.imports_passed_through():
    from activities.approvals import ApprovalActivities
    from activities.approver_policy import ApproverPolicyActivities
    from activities.cloud.activities import CloudActivities
    from activities.cloud.firewalls import FirewallActivities
    from activities.cloud.pool_vms import PoolVMActivities
    from activities.errors import AdmissionRefused, error_class
    from activities.health import HealthActivities
    from activities.internal_messages import InternalMessageActivities
    from activities.limits import LimitsActivities
    from activities.maintenance import AgentDataActivities
    from activities.pool_claims import PoolClaimActivities
    from activities.registry import RegistryActivities
    from activities.secrets import SecretsActivities
    from activities.secrets.pool_activities import PoolSecretsActivities
    from contracts.approver_policy import AccountApprovalPolicy
    from contracts.internal_messages import SEAL_FIELD, SealCheck, canonical
    from contracts.limits import Admission, Admitted, warning_lead_s
    from contracts.messages import MessageRefused, one_message
    from contracts.models import (
        AgentPolicy,
        AgentRef,
        AgentState,
        AgentStatus,
        ApprovalDecision,
        CloseApprovals,
        CreateVMRequest,
        Decision,
        DestroyRequest,
        FirewallRequest,
        HealthChange,
        HealthCheckRequest,
        LifecycleInput,
        LifecycleResult,
        LifecycleState,
        SkillUpdate,
        Transition,
        VMDeleted,
        VMLookup,
        VMRef,
    )
    from contracts.pool import (
        POOL_PROVIDERS,
        AdoptRequest,
        ClaimRequest,
        DeliverClaim,
        PoolClaim,
        PoolKey,
        PoolVMRef,
    )
    from contracts.queues import cloud_queue
    from contracts.regions import Location, ProviderName, placements
    from contracts.spec import AgentSpec, SpecError, validate_skills, validate_spec, validate_tool_patterns
    from contracts.webhooks import ApprovalNotice
    from workflows.caller import caller_identity, identity_refusal
    from workflows.decisions import (
        ACTOR_MAX,
        DECISION_BODY,
        REASON_MAX,
        UPDATE_BODY,
        audit_text,
        policy_refusal,
        refusal,
        update_refusal,
    )
    from workflows.notices import PATCH_APPROVAL_NOTICES, ApprovalNotices, agent_notice
    from workflows.retries import (
        ABANDONED_RETRY,
        BOOT_WAIT_RETRY,
        CLEANUP_RETRY,
        CREATE_RETRY,
        FIREWALL_RETRY,
        HEALTH_WAIT_RETRY,
        PROVISION_RETRY,
        REGISTRY_RETRY,
        VERIFY_RETRY,
    )
    from workflows.search_attributes import ACCOUNT, AGENT_ID, APPROVAL_DEADLINE, APPROVAL_KIND, APPROVAL_STATE

T = TypeVar("T")

# Histories recorded before these changes replay without the commands they add (workflow.patched).
PATCH_RETIRE_ABANDONED = "retire-abandoned-create"
PATCH_AUDIT_EVERY_REFUSAL = "audit-every-refusal"
PATCH_CLOSE_APPROVALS = "cleanup-closes-approvals"
PATCH_SEALED_SYSTEM_MESSAGES = "sealed-system-messages"
# ... and before the approval gate published its search attributes (workflows/search_attributes.py).
PATCH_APPROVAL_ATTRIBUTES = "approval-search-attributes"
# ... and before a decision was checked against the account's approval policy, read when it arrives.
PATCH_ACCOUNT_APPROVERS = "account-approvers"
# ... and before an agent was admitted within its account's quotas, with the lifetimes that then apply.
PATCH_ACCOUNT_LIMITS = "account-limits"
# ... and before each agent on a cloud provider got its own firewall there (activities/cloud/firewalls.py).
PATCH_AGENT_FIREWALL = "agent-firewall"
# ... and before a lifecycle asked its placement's warm pool for a ready VM (workflows/warm_pool.py).
PATCH_WARM_POOL = "warm-pool"
# ... and before the claim and the firewall ran alongside the mint, the credential's delivery alongside its record.
PATCH_CLAIM_WITH_MINT = "claim-with-mint"

# The Web UI renders current details as Markdown: example values, never <placeholders> it would swallow as HTML.
DESTROY_BODY = json.dumps({"requested_by": "your-name", "reason": "why"})
SKILLS_BODY = json.dumps({"skills": ["web.search"], "requested_by": "your-name"})
INPUT_EXAMPLE = '{"spec": {"account_id": "acme", "name": "helper"}}'


class _DestroyRequested(Exception):
    """A `destroy` signal arrived while a provisioning step was running."""


# Pinned: a run that waits days for a person or lives for months never meets another release's code; old
# workers serve it until it ends (docs/upgrades.md).
@workflow.defn(name=AGENT_LIFECYCLE, versioning_behavior=VersioningBehavior.PINNED)
class AgentLifecycleWorkflow:
    @workflow.init
    def __init__(self, *args: Any) -> None:
        # Any start input is taken apart here, never by the SDK: a wrong one fails the workflow in `run` with its
        # reason instead of failing every workflow task (contracts/messages.py).
        try:
            input = one_message(args, LifecycleInput, example=INPUT_EXAMPLE)
            self._invalid = ""
        except MessageRefused as err:
            input = LifecycleInput(spec=AgentSpec(account_id="", name=""))
            self._invalid = str(err)
        self._input = input
        self._spec = input.spec
        # Set here, not in run: a signal that arrives with the start is handled before run begins.
        self._agent: LifecycleState = input.first_state()
        # The rest lives for this run only: the current details' text before any refusal note, the approval decision
        # (taken before anything can continue as new), the provisioning steps under way and the audit event counter.
        self._waiting_base = ""
        self._decision: tuple[bool, Decision] | None = None
        # A dict, not a set: cleanup cancels them in the order they started, the same on every replay.
        self._steps: dict[asyncio.Task[Any], None] = {}
        self._events = 0
        self._publishing = False
        # Webhook notices of the approval gate (workflows/notices.py); enabled there for runs with the patch.
        self._notices = ApprovalNotices(enabled=False, audit=self._notice_failed)
        # With two approvals needed: the first valid approval, until a different approver gives the second.
        self._approvals: list[Decision] = []
        self._gate_text = ""
        # Who Temporal recorded as the sender of each decision that reached the account's policy; and how many
        # `approve` / `reject` signals have arrived, to find each one's event in the history.
        self._identities: list[tuple[Decision, str]] = []
        self._signals_seen: dict[str, int] = {}
        # Admission (the account's quotas): None until decided, "" once admitted, else why it was refused. The next
        # look at the bridge's idle time, while the agent serves with an idle timeout.
        self._admission: str | None = None
        self._admission_recorded = False
        self._idle_check_at: datetime | None = None

    # --- run ------------------------------------------------------------------------------------------------------

    @workflow.run
    async def run(self, *args: Any) -> LifecycleResult:
        input, spec = self._input, self._spec
        if self._invalid:
            raise ApplicationError(f"invalid input: {self._invalid}", type="InvalidSpec", non_retryable=True)
        try:
            validate_spec(spec)
            if not spec.agent_id:
                raise SpecError("agent_id", "is required (the client assigns one)")
            if not 1 <= input.abandoned_create_wait_s <= 7 * 24 * 3600:
                raise SpecError("abandoned_create_wait_s", "must be a whole number of seconds from 1 to 604800")
        except SpecError as err:
            raise ApplicationError(str(err), type="InvalidSpec", non_retryable=True) from None
        self._agent.created_at = self._agent.created_at or workflow.now()

        if not input.continued and workflow.patched(PATCH_ACCOUNT_LIMITS):
            if not await self._admit():
                await workflow.wait_condition(workflow.all_handlers_finished)
                return LifecycleResult(spec.agent_id, AgentState.REJECTED, self._agent.last_error)
        else:
            self._admission = ""
        if not input.continued and spec.require_approval and not await self._approval_gate():
            await self._notices.drain()
            return LifecycleResult(spec.agent_id, AgentState.REJECTED, self._agent.last_error)
        try:
            if not input.continued:
                await self._provision()
            if self._agent.destroy is None:
                await self._serve()
        except _DestroyRequested:
            pass
        except (asyncio.CancelledError, ActivityError, ApplicationError) as err:
            if is_cancelled_exception(err):
                # The cancel may surface as the running activity's cancellation rather than in this coroutine.
                self._agent.last_error = f"cancelled while {self._agent.state.value}"
                await self._cleanup_shielded(AgentState.DESTROYED, "agent.cancelled")
                await asyncio.shield(asyncio.ensure_future(self._notices.drain()))
                raise asyncio.CancelledError from None
            self._agent.last_error = _failure_message(err)
            await self._cleanup_shielded(AgentState.FAILED, "agent.failed")
            await asyncio.shield(asyncio.ensure_future(self._notices.drain()))
            raise ApplicationError(
                f"agent {spec.agent_id} failed and was cleaned up: {self._agent.last_error}",
                type="AgentFailed",
                non_retryable=True,
            ) from None

        await self._cleanup_shielded(AgentState.DESTROYED, "agent.destroyed")
        await self._notices.drain()
        await workflow.wait_condition(workflow.all_handlers_finished)
        reason = self._agent.destroy.reason if self._agent.destroy else ""
        return LifecycleResult(
            spec.agent_id,
            AgentState.DESTROYED,
            reason,
            api_calls=self._agent.api_calls,
            firewall_calls=self._agent.firewall_calls,
        )

    async def _admit(self) -> bool:
        """Register the agent within its account's quotas (atomic with every other create of the account), and
        settle its lifetimes; a refusal ends the run before anything is created, naming the quota and the usage."""
        spec, info = self._spec, workflow.info()
        admission = Admission(
            agent_id=spec.agent_id,
            account_id=spec.account_id,
            name=spec.name,
            provider=spec.provider,
            region=spec.region,
            size=spec.size,
            strict_region=spec.strict_region,
            max_lifetime_s=spec.max_lifetime_s,
            idle_timeout_s=spec.idle_timeout_s,
            state=(AgentState.PENDING_APPROVAL if spec.require_approval else AgentState.PROVISIONING).value,
            event_key=f"{info.workflow_id}/{info.run_id}/admission",
            reason="approval required" if spec.require_approval else "no approval required",
        )
        try:
            admitted: Admitted = await workflow.execute_activity_method(
                LimitsActivities.admit_agent,
                admission,
                start_to_close_timeout=timedelta(seconds=30),
                retry_policy=REGISTRY_RETRY,
            )
        except ActivityError as err:
            refusal = error_class(_failure_type(err))
            if refusal is None or not refusal.refuses_agent:
                raise
            cause = err.cause
            why = self._agent.last_error = cause.message if isinstance(cause, ApplicationError) else str(cause)
            self._admission = why
            self._agent.state = AgentState.REJECTED
            self._agent.finished_at = workflow.now()
            self._set_waiting(f"Finished: agent {spec.agent_id} was refused ({why}). Nothing was created.")
            await self._record("agent.refused", reason=why, audit_only=True)
            return False
        self._agent.max_lifetime_s = admitted.max_lifetime_s
        self._agent.idle_timeout_s = admitted.idle_timeout_s
        self._admission = ""
        self._admission_recorded = True  # as `agent.requested`: the first event of every agent's trail
        return True

    async def _approval_gate(self) -> bool:
        spec = self._spec
        self._agent.state = AgentState.PENDING_APPROVAL
        expires = workflow.now() + timedelta(seconds=spec.approval_timeout_s)
        # The Web UI's list finds the waiting agent by these (`LobstackApprovalState = "pending"`).
        self._publishing = workflow.patched(PATCH_APPROVAL_ATTRIBUTES)
        self._notices = ApprovalNotices(enabled=workflow.patched(PATCH_APPROVAL_NOTICES), audit=self._notice_failed)
        self._publish_approval("pending", expires)
        self._gate_text = (
            f"Waiting for a human to approve agent {spec.agent_id} ({spec.name}, account {spec.account_id}, "
            f"{spec.provider}/{spec.region}/{spec.size}, skills: {', '.join(spec.skills) or 'none'}). "
            f"To approve, send signal `approve` with body `{DECISION_BODY}`; to refuse, send signal `reject` with the "
            f"same body. Without a decision by {expires:%Y-%m-%d %H:%M} UTC the request is rejected."
        )
        self._set_waiting(self._gate_text)
        try:
            if not self._admission_recorded:
                await self._record("agent.requested", reason="approval required")
            self._notices.send(agent_notice(spec, "approval.pending", deadline=expires))
            self._notices.remind_at(timedelta(seconds=spec.approval_timeout_s / 2), lambda: self._reminders(expires))
            await workflow.wait_condition(
                lambda: self._decision is not None or self._agent.destroy is not None,
                timeout=timedelta(seconds=spec.approval_timeout_s),
            )
        except TimeoutError:
            # Caught on purpose: an uncaught TimeoutError would fail the workflow task, not decide anything.
            self._agent.last_error = "approval expired: no decision before the deadline"
            self._notices.send(agent_notice(spec, "approval.expired", decision="expired", reason="no decision"))
            return await self._end_rejected("agent.approval_expired", actor="lobstack", approval="expired")
        except (asyncio.CancelledError, ActivityError) as err:
            if not is_cancelled_exception(err):
                raise
            self._agent.last_error = "cancelled before approval"
            self._notices.send(agent_notice(spec, "approval.decided", decision="cancelled", reason="cancelled"))
            ending = self._end_rejected("agent.cancelled", actor="lobstack", approval="cancelled")
            await asyncio.shield(asyncio.ensure_future(ending))
            await asyncio.shield(asyncio.ensure_future(self._notices.drain()))
            raise asyncio.CancelledError from None
        finally:
            self._notices.cancel_reminders()  # the gate is over: no reminder timer stays open while the agent runs
        if self._decision is None:
            self._agent.last_error = "destroyed before approval"
            actor = self._agent.destroy.requested_by if self._agent.destroy else ""
            self._notices.send(
                agent_notice(spec, "approval.decided", decision="rejected", decided_by=actor, reason="destroyed")
            )
            return await self._end_rejected("agent.rejected", actor=actor or "unknown")
        approved, decision = self._decision
        self._notices.send(
            agent_notice(
                spec,
                "approval.decided",
                decision="approved" if approved else "rejected",
                decided_by=decision.approver,
                reason=decision.reason,
            )
        )
        if not approved:
            self._agent.last_error = f"rejected by {decision.approver}: {decision.reason}".rstrip(": ")
            return await self._end_rejected(
                "agent.rejected",
                actor=decision.approver,
                reason=decision.reason,
                details=self._identity_details(decision),
            )
        self._agent.approved_by = decision.approver
        self._agent.state = AgentState.PROVISIONING
        self._publish_approval("approved")
        both = {"approvals": ", ".join(d.approver for d in [*self._approvals, decision])} if self._approvals else {}
        await self._record(
            "agent.approved",
            actor=decision.approver,
            reason=decision.reason,
            details={**both, **self._identity_details(decision)},
        )
        return True

    def _reminders(self, deadline: datetime) -> list[ApprovalNotice]:
        """At half the deadline, still waiting: remind the approvers, and tell the escalation group if there is one."""
        spec = self._spec
        if self._decision is not None or self._agent.state != AgentState.PENDING_APPROVAL:
            return []
        found = [agent_notice(spec, "approval.reminder", deadline=deadline)]
        if spec.escalation_approvers:
            found.append(
                agent_notice(spec, "approval.escalated", deadline=deadline, approvers=spec.escalation_approvers)
            )
        return found

    async def _notice_failed(self, action: str, reason: str) -> None:
        await self._record(action, reason=reason, audit_only=True)

    async def _end_rejected(
        self,
        action: str,
        *,
        actor: str,
        reason: str = "",
        approval: str = "rejected",
        details: dict[str, str] | None = None,
    ) -> bool:
        self._agent.state = AgentState.REJECTED
        self._publish_approval(approval)
        self._agent.finished_at = workflow.now()
        self._set_waiting(
            f"Finished: agent {self._spec.agent_id} was not approved ({self._agent.last_error}). Nothing was created."
        )
        await self._record(action, actor=actor, reason=reason or self._agent.last_error, details=details)
        return False

    def _publish_approval(self, state: str, deadline: datetime | None = None) -> None:
        """Set the approval's search attributes: all of them when it starts waiting, then only its outcome."""
        if not self._publishing:
            return
        spec = self._spec
        found: list[SearchAttributeUpdate[Any]] = [APPROVAL_STATE.value_set(state)]
        if deadline is not None:
            found += [
                APPROVAL_KIND.value_set("agent"),
                ACCOUNT.value_set(spec.account_id),
                AGENT_ID.value_set(spec.agent_id),
                APPROVAL_DEADLINE.value_set(deadline),
            ]
        workflow.upsert_search_attributes(found)

    async def _provision(self) -> None:
        spec = self._spec
        ref = AgentRef(spec.agent_id, spec.account_id)
        self._agent.state = AgentState.PROVISIONING
        abort = f"To abort, send signal `destroy` with body `{DESTROY_BODY}`."
        if not spec.require_approval and not self._admission_recorded:
            await self._record("agent.requested", reason="no approval required")

        self._set_waiting(f"Provisioning agent {spec.agent_id}: minting its secrets in Vault. {abort}")
        if self._claims_with_mint():
            return await self._provision_pooled(abort)
        await self._mint(ref)
        await self._boot(abort)

    async def _mint(self, ref: AgentRef) -> None:
        await self._race(
            lambda: workflow.execute_activity_method(
                SecretsActivities.mint_secrets,
                ref,
                start_to_close_timeout=timedelta(seconds=30),
                retry_policy=PROVISION_RETRY,
            )
        )
        await self._record("secrets.minted")

    def _claims_with_mint(self) -> bool:
        """A first boot on a provider with warm pools asks its pool while the secrets are minted."""
        first_boot = self._agent.vm is None and not self._agent.tried
        if not first_boot or _placements(self._spec)[0].provider not in POOL_PROVIDERS:
            return False
        return workflow.patched(PATCH_CLAIM_WITH_MINT)

    async def _provision_pooled(self, abort: str) -> None:
        """Mint ‖ (claim ‖ firewall, then adopt); then the delivery ‖ its audit record; then the health check. A
        pool VM never holds the agent's credential before it holds the agent's firewall. Each branch finishes (or is
        abandoned to cleanup by a destroy) before a failure of the other is raised, so cleanup sees all they made."""
        spec = self._spec
        minted, adopted = await asyncio.gather(
            self._mint(AgentRef(spec.agent_id, spec.account_id)), self._claim_and_adopt(abort), return_exceptions=True
        )
        _raise_first(minted, adopted)
        if adopted is None or isinstance(adopted, BaseException):
            return await self._boot(abort, pool_asked=True)
        vm, pooled, key = adopted
        self._set_waiting(f"Provisioning agent {spec.agent_id}: handing VM {vm.vm_id} its credential. {abort}")
        recorded, delivered = await asyncio.gather(
            self._record("vm.claimed", details={"location": vm.location, "pool": key.pool_id, "slot": pooled.slot}),
            self._deliver(pooled),
            return_exceptions=True,
        )
        _raise_first(recorded, delivered)
        await self._until_healthy(vm, abort)

    async def _claim_and_adopt(self, abort: str) -> tuple[VMRef, PoolVMRef, PoolKey] | None:
        """The pool's VM, made the agent's (its name, labels and firewall); None when the pool had none."""
        spec = self._spec
        place = _placements(spec)[0]
        key = PoolKey(place.provider, spec.region, spec.size)
        self._set_waiting(f"Provisioning agent {spec.agent_id}: asking warm pool {key} for a ready VM. {abort}")
        claim, firewall_id = await asyncio.gather(
            self._ask_pool(key),
            self._ensure_firewall(place.provider, f"{place.provider}/{place.code}", abort),
            return_exceptions=True,
        )
        # Taken before any failure is raised: a claimed VM is the agent's, and cleanup must know it.
        pooled = self._take(claim, place, key) if isinstance(claim, PoolClaim) else None
        _raise_first(claim, firewall_id)
        if pooled is None or not isinstance(firewall_id, str):
            return None
        return await self._adopt(place, key, pooled, firewall_id, abort), pooled, key

    async def _boot(self, abort: str, *, pool_asked: bool = False) -> None:
        """Create a VM, wait for it, health-check it: the agent is running when this returns."""
        spec = self._spec
        first_boot = self._agent.vm is None and not self._agent.tried
        if first_boot and not pool_asked and workflow.patched(PATCH_WARM_POOL):
            claimed = await self._from_pool(abort)
            if claimed is not None:
                return await self._until_healthy(claimed, abort)
        vm = self._agent.vm = await self._create_vm(abort)
        # The VM id is persisted before any wait, so lost state can always be cleaned up.
        await self._record("vm.created", details={"location": vm.location})

        self._set_waiting(f"Provisioning agent {spec.agent_id}: waiting for VM {vm.vm_id} to boot. {abort}")
        lookup = VMLookup(vm.provider, spec.agent_id, vm.vm_id)
        booted = await self._race(
            lambda: workflow.execute_activity_method(
                CloudActivities.wait_vm_running,
                lookup,
                task_queue=cloud_queue(vm.provider, workflow.info().task_queue),
                start_to_close_timeout=timedelta(minutes=10),
                heartbeat_timeout=timedelta(seconds=30),
                retry_policy=BOOT_WAIT_RETRY,
            )
        )
        self._agent.api_calls += booted.api_calls
        vm = self._agent.vm = VMRef(vm.provider, vm.vm_id, vm.name, booted.address, location=vm.location)
        await self._record("vm.running")
        await self._until_healthy(vm, abort)

    async def _until_healthy(self, vm: VMRef, abort: str) -> None:
        """Health-check the agent's running VM until healthy: then the agent is running."""
        spec = self._spec
        self._set_waiting(
            f"Provisioning agent {spec.agent_id}: waiting for its health check at {vm.address} "
            f"(up to {spec.health_timeout_s}s). {abort}"
        )
        check = HealthCheckRequest(spec.agent_id, vm.address, workflow.now() + timedelta(seconds=spec.health_timeout_s))
        report = await self._race(
            lambda: workflow.execute_activity_method(
                HealthActivities.wait_healthy,
                check,
                start_to_close_timeout=timedelta(seconds=spec.health_timeout_s + 60),
                heartbeat_timeout=timedelta(seconds=30),
                retry_policy=HEALTH_WAIT_RETRY,
            )
        )
        self._agent.health = "healthy" if report.healthy else report.status
        self._agent.running_at = workflow.now()
        # Shown as running only once the registry holds it, so `lobstack wait` and then `lobstack list` agree.
        await self._record("agent.running", state=AgentState.RUNNING, reason=f"healthy after {report.checks} checks")
        self._agent.state = AgentState.RUNNING
        self._agent.serving_since = self._agent.serving_since or self._agent.running_at
        if self._agent.pool_slot:
            # The bridge dropped its pool token when it took the claim; the pool identity itself goes now.
            await self._until_clean(
                PoolSecretsActivities.destroy_pool_identity,
                PoolSecretsActivities.verify_pool_identity_gone,
                self._agent.pool_slot,
            )

    async def _from_pool(self, abort: str) -> VMRef | None:
        """A ready VM from the first placement's warm pool, made the agent's and handed its bootstrap; None when
        there is no pool or it is empty (then a cold create, and the current details say why). Runs before the patch
        `claim-with-mint`, which does the same with the claim and firewall alongside the mint (`_provision_pooled`)."""
        spec = self._spec
        place = _placements(spec)[0]
        if place.provider not in POOL_PROVIDERS:
            return None
        key = PoolKey(place.provider, spec.region, spec.size)
        self._set_waiting(f"Provisioning agent {spec.agent_id}: asking warm pool {key} for a ready VM. {abort}")
        pooled = self._take(await self._ask_pool(key), place, key)
        if pooled is None:
            return None
        firewall_id = await self._ensure_firewall(place.provider, f"{place.provider}/{place.code}", abort)
        vm = await self._adopt(place, key, pooled, firewall_id, abort)
        await self._record("vm.claimed", details={"location": place.code, "pool": key.pool_id, "slot": pooled.slot})
        self._set_waiting(f"Provisioning agent {spec.agent_id}: handing VM {vm.vm_id} its credential. {abort}")
        await self._deliver(pooled)
        return vm

    async def _ask_pool(self, key: PoolKey) -> PoolClaim:
        """The pool's answer; a failed claim is an empty pool (a cold create follows), never a failed lifecycle."""
        spec = self._spec
        try:
            claim: PoolClaim = await self._race(
                lambda: workflow.execute_activity_method(
                    PoolClaimActivities.claim_pool_vm,
                    ClaimRequest(spec.agent_id, spec.account_id, key.pool_id),
                    start_to_close_timeout=timedelta(seconds=30),
                    retry_policy=PROVISION_RETRY,
                )
            )
        except ActivityError as err:
            if is_cancelled_exception(err):
                raise
            claim = PoolClaim(None, key.pool_id, f"the claim failed: {_failure_message(err)}")
        return claim

    def _take(self, claim: PoolClaim, place: Location, key: PoolKey) -> PoolVMRef | None:
        """Make a claimed VM the agent's in this workflow's state, or say why the create is cold."""
        pooled = claim.vm
        if pooled is None or not pooled.vm_id or not pooled.address:
            self._agent.started_from = f"cold create ({claim.reason or 'no VM'})"
            return None
        self._agent.pool_slot = pooled.slot
        self._agent.started_from = f"warm pool {key.pool_id}"
        # A VM of the agent's may be there from now on: cleanup deletes it by id and proves it gone by label.
        self._agent.create_sent(place.provider)
        self._agent.vm = VMRef(place.provider, pooled.vm_id, pooled.slot, pooled.address, location=place.code)
        return pooled

    async def _adopt(self, place: Location, key: PoolKey, pooled: PoolVMRef, firewall_id: str, abort: str) -> VMRef:
        spec = self._spec
        self._set_waiting(
            f"Provisioning agent {spec.agent_id}: VM {pooled.vm_id} from pool {key} takes its name. {abort}"
        )
        adopted: VMRef = await self._race(
            lambda: workflow.execute_activity_method(
                PoolVMActivities.adopt_pool_vm,
                AdoptRequest(place.provider, pooled.vm_id, pooled.slot, spec.agent_id, spec.account_id, firewall_id),
                task_queue=cloud_queue(place.provider, workflow.info().task_queue),
                start_to_close_timeout=timedelta(minutes=1),
                retry_policy=PROVISION_RETRY,
            )
        )
        self._count_calls(adopted.api_calls)
        vm = self._agent.vm = VMRef(place.provider, pooled.vm_id, adopted.name, pooled.address, location=place.code)
        return vm

    async def _deliver(self, pooled: PoolVMRef) -> None:
        await self._race(
            lambda: workflow.execute_activity_method(
                PoolSecretsActivities.deliver_claim,
                DeliverClaim(self._spec.agent_id, pooled.slot, pooled.address),
                start_to_close_timeout=timedelta(seconds=30),
                retry_policy=PROVISION_RETRY,
            )
        )

    async def _create_vm(self, abort: str) -> VMRef:
        """Create the VM at the first placement that works; capacity or outage at one moves on to the next."""
        spec = self._spec
        candidates = _placements(spec)
        for index, place in enumerate(candidates):
            where = f"{place.provider}/{place.code}" if place.code else place.provider
            request = CreateVMRequest(
                spec.agent_id, spec.account_id, spec.name, place.provider, spec.region, spec.size, location=place.code
            )

            async def create(request: CreateVMRequest = request) -> VMRef:
                return await workflow.execute_activity_method(
                    CloudActivities.create_vm,
                    request,
                    task_queue=cloud_queue(request.provider, workflow.info().task_queue),
                    start_to_close_timeout=timedelta(minutes=2),
                    retry_policy=CREATE_RETRY,
                    # A retried or abandoned create must have finished before cleanup looks for what it made.
                    cancellation_type=ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
                )

            try:
                # The firewall first: the VM is created with it attached (a failure here fails over like a create's).
                request.firewall_id = await self._ensure_firewall(request.provider, where, abort)
                self._agent.create_sent(place.provider)
                self._set_waiting(f"Provisioning agent {spec.agent_id}: creating its VM on {where}. {abort}")
                vm = await self._race(create)
            except ActivityError as err:
                kind = _failure_type(err)
                # What the failure means is a property of its error class (activities/errors.py), decided there once.
                error = error_class(kind)
                if error is not None and error.created_nothing and not is_cancelled_exception(err):
                    self._agent.proven_empty(place.provider)
                fails_over = error is not None and error.fails_over
                if is_cancelled_exception(err) or not fails_over or index == len(candidates) - 1:
                    raise
                await self._record(
                    "vm.failover",
                    reason=f"{where}: {_failure_message(err)}",
                    details={"provider": place.provider, "location": place.code, "error": kind},
                )
                if place.provider in self._agent.may_have_vm and workflow.patched(PATCH_RETIRE_ABANDONED):
                    # At most one live VM per agent: whatever this create may have made goes before the next one.
                    await self._retire_abandoned(place.provider, where, abort)
                continue
            self._agent.api_calls += vm.api_calls
            return vm
        raise ApplicationError(
            f"no placement for {spec.provider} in {spec.region}", type="NoPlacement", non_retryable=True
        )

    async def _ensure_firewall(self, provider: ProviderName, where: str, abort: str) -> str:
        """The agent's own firewall on a cloud provider (none on `local`): its id, to attach at the VM's create."""
        if provider == "local" or not workflow.patched(PATCH_AGENT_FIREWALL):
            return ""
        spec = self._spec
        # Before the request: a lost answer may still have made it, and cleanup looks wherever one was asked for.
        if provider not in self._agent.firewalls_on:
            self._agent.firewalls_on.append(provider)
        self._set_waiting(f"Provisioning agent {spec.agent_id}: making its firewall on {where}. {abort}")
        request = FirewallRequest(provider, spec.agent_id, spec.account_id)
        try:
            firewall = await self._race(
                lambda: workflow.execute_activity_method(
                    FirewallActivities.ensure_firewall,
                    request,
                    task_queue=cloud_queue(provider, workflow.info().task_queue),
                    start_to_close_timeout=timedelta(minutes=2),
                    retry_policy=FIREWALL_RETRY,
                    # Cleanup must not look for the firewall before an abandoned attempt has finished making it.
                    cancellation_type=ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
                )
            )
        except ActivityError as err:
            error = error_class(_failure_type(err))
            if error is not None and error.created_nothing and not is_cancelled_exception(err):
                # Refused (a revoked token, say) before anything was made: cleanup has nothing to look for there.
                self._agent.firewalls_on.remove(provider)
            raise
        self._count_calls(firewall.api_calls, firewall=True)
        return firewall.firewall_id

    async def _retire_abandoned(self, provider: ProviderName, where: str, abort: str) -> None:
        """Find and delete the VM a create at `where` may have made, and revoke every token of the agent.

        Its answer was lost and the provider then failed (a 5xx on the look-up that would have adopted it): a VM may
        be running there, logged in to Vault. Waits for the provider to answer, up to the input's bound; if it never
        does, the lifecycle fails (and its cleanup keeps looking there) rather than creating a second VM elsewhere.
        """
        spec = self._spec
        wait_s = self._input.abandoned_create_wait_s
        self._set_waiting(
            f"Provisioning agent {spec.agent_id}: the create on {where} failed after it may have made a VM. Waiting "
            f"up to {wait_s}s for {provider} to answer, to delete any such VM before trying the next placement. "
            f"{abort}"
        )
        lookup = VMLookup(provider, spec.agent_id)
        try:
            deleted: VMDeleted = await self._race(lambda: self._while_answered(CloudActivities.delete_vm, lookup))
            await self._race(lambda: self._while_answered(CloudActivities.verify_vm_gone, lookup))
        except ActivityError as err:
            if is_cancelled_exception(err):
                raise
            raise ApplicationError(
                f"the create on {where} may have made a VM and {provider} did not confirm it gone within {wait_s}s "
                f"({_failure_message(err)}); not creating a second VM elsewhere",
                type="AbandonedCreateUnresolved",
                non_retryable=True,
            ) from None
        self._agent.api_calls += deleted.api_calls
        self._agent.proven_empty(provider)
        if not deleted.vm_ids:
            return
        # Its bridge may have logged in: no token of the agent may outlive the VM (the next VM gets a fresh one).
        revoked = await self._race(
            lambda: workflow.execute_activity_method(
                SecretsActivities.revoke_agent_tokens,
                AgentRef(spec.agent_id, spec.account_id),
                start_to_close_timeout=timedelta(minutes=2),
                retry_policy=PROVISION_RETRY,
            )
        )
        await self._record(
            "vm.abandoned_deleted",
            reason=f"a create on {where} made VM {', '.join(deleted.vm_ids)} but its answer was lost",
            details={
                "provider": provider,
                "location": where,
                "abandoned_vm_ids": ",".join(deleted.vm_ids),
                "tokens_revoked": str(revoked),
            },
        )

    def _while_answered(self, step: Callable[..., Any], lookup: VMLookup) -> Awaitable[Any]:
        """A cloud step of `_retire_abandoned`: retried while the provider fails, up to the input's bound."""
        return workflow.execute_activity_method(
            step,
            lookup,
            task_queue=cloud_queue(lookup.provider, workflow.info().task_queue),
            start_to_close_timeout=timedelta(minutes=2),
            schedule_to_close_timeout=timedelta(seconds=self._input.abandoned_create_wait_s),
            retry_policy=ABANDONED_RETRY,
        )

    async def _serve(self) -> None:
        """Running: wait for `destroy`, replace an unhealthy VM when asked, continue as new when history grows."""
        spec, agent = self._spec, self._agent
        if agent.idle_timeout_s:
            self._idle_check_at = workflow.now() + timedelta(
                seconds=agent.idle_timeout_s - warning_lead_s(agent.idle_timeout_s)
            )
        while True:
            vm = agent.vm
            assert vm is not None
            self._set_waiting(
                f"Agent {spec.agent_id} is {agent.state.value} on VM {vm.vm_id} at {vm.address} (health: "
                f"{agent.health}). To destroy it, send signal `destroy` with body `{DESTROY_BODY}`."
                + agent.lifetime_warning
                + agent.idle_warning
            )
            due = self._next_limit_at()
            try:
                await workflow.wait_condition(
                    lambda: (
                        agent.destroy is not None
                        or agent.replace_requested
                        or workflow.info().is_continue_as_new_suggested()
                    ),
                    # Lifetimes only: a run without them waits exactly as before (no timer in its history).
                    timeout=None if due is None else max(due - workflow.now(), timedelta(seconds=1)),
                )
            except TimeoutError:
                # Caught on purpose: the time of a lifetime warning, deadline or idle check has come.
                if agent.destroy is None:
                    await self._limits_due()
                continue
            if agent.destroy is not None:
                return
            if self._agent.replace_requested:
                self._agent.replace_requested = False
                await self._replace()
                continue
            await workflow.wait_condition(workflow.all_handlers_finished)
            # The whole state goes on, so the next run is this one with a shorter history.
            workflow.continue_as_new(
                LifecycleInput(
                    spec=spec, state=self._agent, abandoned_create_wait_s=self._input.abandoned_create_wait_s
                )
            )

    def _next_limit_at(self) -> datetime | None:
        """The next moment a lifetime needs a look: the lifetime's warning or deadline, or the next idle check."""
        agent = self._agent
        found: list[datetime] = []
        end = agent.expires_at
        if end is not None:
            lead = timedelta(seconds=warning_lead_s(agent.max_lifetime_s))
            found.append(end if agent.lifetime_warning else end - lead)
        if agent.idle_timeout_s and self._idle_check_at is not None:
            found.append(self._idle_check_at)
        return min(found, default=None)

    async def _limits_due(self) -> None:
        """Warn before a lifetime ends, destroy when it has: the maximum lifetime first, then the idle timeout."""
        agent, now = self._agent, workflow.now()
        end = agent.expires_at
        if end is not None and now >= end:
            await self._expire("agent.lifetime_reached", f"its maximum lifetime of {_span(agent.max_lifetime_s)} ended")
            return
        if (
            end is not None
            and not agent.lifetime_warning
            and now >= end - timedelta(seconds=warning_lead_s(agent.max_lifetime_s))
        ):
            agent.lifetime_warning = (
                f" Warning: its maximum lifetime of {_span(agent.max_lifetime_s)} ends at {end:%Y-%m-%d %H:%M:%S} "
                "UTC; it will then be destroyed."
            )
            await self._record(
                "agent.lifetime_warning", reason=f"destroyed at {end:%Y-%m-%d %H:%M:%S} UTC", audit_only=True
            )
        if agent.idle_timeout_s and self._idle_check_at is not None and now >= self._idle_check_at:
            await self._check_idle()

    async def _check_idle(self) -> None:
        """Ask the bridge how long its agent has been idle; warn, destroy, or look again when it could next matter."""
        agent, spec = self._agent, self._spec
        vm = agent.vm
        assert vm is not None
        limit, lead = agent.idle_timeout_s, warning_lead_s(agent.idle_timeout_s)
        report = await workflow.execute_activity_method(
            HealthActivities.probe_agent,
            HealthCheckRequest(spec.agent_id, vm.address, workflow.now()),
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=HEALTH_WAIT_RETRY,
        )
        now = workflow.now()
        if report.idle_s < 0:
            # Unknown (the bridge is unreachable or does not say): the fleet monitor judges health; look again later.
            self._idle_check_at = now + timedelta(seconds=max(lead, 60))
            return
        left = limit - report.idle_s
        if left <= 0:
            await self._expire("agent.idle_timeout", f"no agent API request for {_span(int(report.idle_s))}")
            return
        if left <= lead:
            if not agent.idle_warning:
                agent.idle_warning = (
                    f" Warning: idle for {_span(int(report.idle_s))}; it will be destroyed after {_span(limit)} "
                    "without an agent API request."
                )
                await self._record(
                    "agent.idle_warning", reason=f"idle for {int(report.idle_s)}s of {limit}s", audit_only=True
                )
            self._idle_check_at = now + timedelta(seconds=left)
            return
        agent.idle_warning = ""  # active again
        self._idle_check_at = now + timedelta(seconds=left - lead)

    async def _expire(self, action: str, why: str) -> None:
        """A lifetime ended: destroyed as if `destroy` had been sent by lobstack, with the reason audited."""
        self._agent.destroy = DestroyRequest(requested_by="lobstack", reason=why)
        await self._record(action, reason=why)

    async def _replace(self) -> None:
        """A new VM for the same agent: the old VM's tokens revoked, the old VM deleted, a fresh bootstrap for the new.

        The old VM goes first: its name is the agent's, and an unhealthy agent is serving nobody anyway.
        """
        spec = self._spec
        old = self._agent.vm
        assert old is not None
        ref = AgentRef(spec.agent_id, spec.account_id)
        abort = f"To abort, send signal `destroy` with body `{DESTROY_BODY}`."
        self._set_waiting(f"Replacing unhealthy agent {spec.agent_id}: retiring VM {old.vm_id}. {abort}")
        failures = self._agent.consecutive_failures
        await self._record("agent.replacing", reason=f"{failures} failed health checks in a row")
        await workflow.execute_activity_method(
            SecretsActivities.revoke_agent_tokens,
            ref,
            start_to_close_timeout=timedelta(minutes=2),
            retry_policy=CLEANUP_RETRY,
        )
        await self._until_clean(
            CloudActivities.delete_vm,
            CloudActivities.verify_vm_gone,
            VMLookup(old.provider, spec.agent_id, old.vm_id),
            task_queue=cloud_queue(old.provider, workflow.info().task_queue),
        )
        self._agent.vm = None
        self._agent.tried, self._agent.may_have_vm = [], []
        self._agent.consecutive_failures = 0
        await self._boot(abort)
        await self._record("agent.replaced", details={"old_vm_id": old.vm_id})

    # --- policy and health ----------------------------------------------------------------------------------------

    @workflow.signal(
        description=f"For operators (what `LobstackClient.update_skills` sends): change the agent's skills. "
        f"Body: {SKILLS_BODY}"
    )
    async def update_skills(self, *body: Any) -> None:
        """Body `{"skills": [...], "approval_required": [...] | null, "requested_by": "..."}`, checked as sent."""
        update = await self._receive("update_skills", body, SkillUpdate, SKILLS_BODY)
        if update is None:
            return
        try:
            skills = validate_skills(update.skills)
            gated = validate_tool_patterns(update.approval_required) if update.approval_required is not None else None
        except SpecError as err:
            await self._refuse("update_skills", err.without_value, actor=update.requested_by)
            return
        self._accepted()
        self._agent.skills = skills
        if gated is not None:
            self._agent.approval_required = gated
        self._agent.policy_version += 1
        await self._record(
            "skills.updated",
            actor=update.requested_by or "unknown",
            reason=f"skills: {', '.join(skills) or 'none'}",
            details={"policy_version": str(self._agent.policy_version)},
        )

    @workflow.signal(
        description="Internal, for the system only: the fleet monitor's health report. Do not send it: a message "
        "without the workers' seal is refused and audited. To replace an unhealthy agent, destroy and create it."
    )
    async def health_changed(self, *body: Any) -> None:
        """From the fleet monitor, only when health changes: degrade past the threshold, recover when healthy."""
        # Older histories took any well-formed body: they replay as recorded.
        if workflow.patched(PATCH_SEALED_SYSTEM_MESSAGES) and not await self._from_system("health_changed", body):
            return
        change = await self._receive("health_changed", body, HealthChange, "")
        if change is None or self._agent.state not in (AgentState.RUNNING, AgentState.DEGRADED):
            return
        if change.sent_at:
            self._agent.last_system_message_at = change.sent_at
        agent = self._agent
        agent.health = "healthy" if change.healthy else (change.status or "unhealthy")
        agent.consecutive_failures = (
            0 if change.healthy else max(change.consecutive_failures, agent.consecutive_failures + 1)
        )
        if change.healthy and agent.state == AgentState.DEGRADED:
            agent.state = AgentState.RUNNING
            await self._record("agent.recovered", reason=change.reason)
        elif not change.healthy and agent.state == AgentState.RUNNING:
            if agent.consecutive_failures >= self._spec.unhealthy_threshold:
                agent.state = AgentState.DEGRADED
                await self._record(
                    "agent.degraded", reason=f"{agent.consecutive_failures} failed checks: {change.reason}"
                )
                agent.replace_requested = self._spec.replace_unhealthy
        elif not change.healthy and agent.state == AgentState.DEGRADED and self._spec.replace_unhealthy:
            agent.replace_requested = True

    @workflow.query(description="What the gateway enforces for this agent: skills, gated tools, approvers.")
    def policy(self, *args: Any) -> AgentPolicy:
        _no_arguments("policy", args)
        return self._agent.policy(self._spec)

    # --- cleanup --------------------------------------------------------------------------------------------------

    async def _cleanup_shielded(self, final: AgentState, action: str) -> None:
        cleanup = asyncio.ensure_future(self._cleanup(final, action))
        while True:
            try:
                await asyncio.shield(cleanup)
                return
            except asyncio.CancelledError:
                if cleanup.done():
                    raise
                # A cancel request while cleaning up must not leave anything behind: keep waiting for it.
                continue

    async def _cleanup(self, final: AgentState, action: str) -> None:
        spec = self._spec
        self._agent.state = AgentState.DESTROYING
        self._set_waiting(
            f"Destroying agent {spec.agent_id}: revoking every secret and token, deleting its VM and firewall, "
            "then verifying nothing is left. No action needed."
        )
        abandoned = [step for step in self._steps if not step.done()]
        for step in abandoned:
            step.cancel()
        if abandoned:
            await workflow.wait(abandoned)
        destroy = self._agent.destroy
        actor = destroy.requested_by if destroy and destroy.requested_by else "lobstack"
        await self._record("agent.destroying", actor=actor, reason=self._agent.last_error)
        if workflow.patched(PATCH_CLOSE_APPROVALS):
            # First, so nobody approves a tool for an agent that is going away; each closes `cancelled` and audits.
            why = self._agent.last_error or (destroy.reason if destroy else "") or "destroy requested"
            await workflow.execute_activity_method(
                ApprovalActivities.close_approvals,
                CloseApprovals(spec.agent_id, spec.account_id, f"agent {spec.agent_id} is {final.value}: {why}"),
                start_to_close_timeout=timedelta(minutes=2),
                retry_policy=CLEANUP_RETRY,
            )

        ref = AgentRef(spec.agent_id, spec.account_id)
        vm = self._agent.vm
        # Every provider a create may have reached holds a VM until proven otherwise: look on all of them.
        providers = [name for name in self._agent.tried if name in self._agent.may_have_vm]
        if vm and vm.provider not in providers:
            providers.append(vm.provider)
        # Credentials first: from here on the agent can read nothing, even if deleting its VM has to wait.
        await self._until_clean(SecretsActivities.destroy_secrets, SecretsActivities.verify_secrets_gone, ref)
        # The customer data we kept for it (ciphertexts under its now-deleted key) goes too.
        await workflow.execute_activity_method(
            AgentDataActivities.delete_agent_data,
            ref,
            start_to_close_timeout=timedelta(minutes=1),
            retry_policy=CLEANUP_RETRY,
        )
        if self._agent.pool_slot:
            await self._until_clean(
                PoolSecretsActivities.destroy_pool_identity,
                PoolSecretsActivities.verify_pool_identity_gone,
                self._agent.pool_slot,
            )
        await self._record("secrets.deleted")
        for provider in providers:
            lookup = VMLookup(provider, spec.agent_id, vm.vm_id if vm and vm.provider == provider else "")
            await self._until_clean(
                CloudActivities.delete_vm,
                CloudActivities.verify_vm_gone,
                lookup,
                task_queue=cloud_queue(provider, workflow.info().task_queue),
            )
        await self._record("vm.deleted")
        if self._agent.firewalls_on and workflow.patched(PATCH_AGENT_FIREWALL):
            # After the VMs: a provider may refuse to delete a firewall that a VM still holds (Hetzner).
            for provider in self._agent.firewalls_on:
                await self._until_clean(
                    FirewallActivities.delete_firewall,
                    FirewallActivities.verify_firewall_gone,
                    FirewallRequest(provider, spec.agent_id, spec.account_id),
                    task_queue=cloud_queue(provider, workflow.info().task_queue),
                    firewall=True,
                )
            await self._record("firewall.deleted", details={"providers": ",".join(self._agent.firewalls_on)})

        self._agent.state = final
        self._agent.health = "gone"
        self._agent.finished_at = workflow.now()
        outcome = "destroyed" if final == AgentState.DESTROYED else f"{final.value} ({self._agent.last_error})"
        self._set_waiting(
            f"Finished: agent {spec.agent_id} {outcome}; its VM, firewall, secrets, policy, role, key and "
            "tokens were removed and verified gone."
        )
        await self._record(action, actor=actor, reason=self._agent.last_error or (destroy.reason if destroy else ""))

    async def _until_clean(
        self,
        delete: Callable[..., object],
        verify: Callable[..., object],
        arg: object,
        task_queue: str | None = None,
        *,
        firewall: bool = False,
    ) -> None:
        """Delete, then verify, until verification passes. Both are idempotent.

        Never gives up: a failed verification deletes again, and even a non-retryable delete failure (say, a revoked
        cloud token) is tried again after a pause, with the current details telling an operator what blocks it.
        """
        delay = 1.0
        while True:
            try:
                deleted = await workflow.execute_activity_method(
                    delete,
                    arg,
                    task_queue=task_queue,
                    start_to_close_timeout=timedelta(minutes=2),
                    retry_policy=CLEANUP_RETRY,
                )
                self._count_calls(getattr(deleted, "api_calls", 0), firewall=firewall)
                verified = await workflow.execute_activity_method(
                    verify,
                    arg,
                    task_queue=task_queue,
                    start_to_close_timeout=timedelta(minutes=2),
                    retry_policy=VERIFY_RETRY,
                )
                # The proof of absence is one of the lifecycle's provider calls too (not a command: replays as before).
                self._count_calls(getattr(verified, "api_calls", 0), firewall=firewall)
                return
            except ActivityError as err:
                blocker = _failure_message(err)
                workflow.logger.warning("cleanup step failed, trying again in %.0fs: %s", delay, blocker)
                self._set_waiting(
                    f"Destroying agent {self._spec.agent_id} is blocked: {blocker}. Retrying every {delay:.0f}s until "
                    "it succeeds; fix the cause (credentials, provider outage) and it completes on its own."
                )
                await workflow.sleep(delay)
                delay = min(delay * 2, 300.0)

    # --- helpers --------------------------------------------------------------------------------------------------

    def _count_calls(self, calls: int, *, firewall: bool = False) -> None:
        """A cloud step's provider API calls: the VM's (at most five a lifecycle) apart from its firewall's."""
        if firewall:
            self._agent.firewall_calls += calls
        else:
            self._agent.api_calls += calls

    async def _race(self, start: Callable[[], Awaitable[T]]) -> T:
        """Run one provisioning step, abandoning it (and cancelling its activity) if `destroy` arrives."""
        if self._agent.destroy is not None:
            raise _DestroyRequested
        step: asyncio.Task[T] = asyncio.ensure_future(start())
        self._steps[step] = None
        await workflow.wait_condition(lambda: step.done() or self._agent.destroy is not None)
        if step.done():
            self._steps.pop(step, None)
            return step.result()
        raise _DestroyRequested

    async def _record(
        self,
        action: str,
        *,
        actor: str = "lobstack",
        reason: str = "",
        details: dict[str, str] | None = None,
        audit_only: bool = False,
        state: AgentState | None = None,
    ) -> None:
        """Write the transition to the registry and the audit trail; `state` when it is not yet the workflow's own."""
        spec = self._spec
        info = workflow.info()
        self._events += 1
        self._agent.updated_at = workflow.now()
        vm = self._agent.vm
        await workflow.execute_activity_method(
            RegistryActivities.record_transition,
            Transition(
                event_key=f"{info.workflow_id}/{info.run_id}/{self._events}",
                agent_id=spec.agent_id,
                account_id=spec.account_id,
                state=state or self._agent.state,
                action=action,
                actor=audit_text(actor, ACTOR_MAX),
                reason=audit_text(reason, REASON_MAX),
                name=spec.name,
                provider=vm.provider if vm else spec.provider,
                region=spec.region,
                size=spec.size,
                vm_id=vm.vm_id if vm else "",
                address=vm.address if vm else "",
                health=self._agent.health,
                at=self._agent.updated_at,
                details={**({"vm_id": vm.vm_id, "provider": vm.provider} if vm else {}), **(details or {})},
                audit_only=audit_only,
                unhealthy_threshold=spec.unhealthy_threshold,
            ),
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=REGISTRY_RETRY,
        )

    def _set_waiting(self, text: str) -> None:
        self._waiting_base = text
        self._show()

    def _show(self) -> None:
        self._agent.waiting_for = self._waiting_base + self._agent.refused_note
        workflow.set_current_details(self._agent.waiting_for)

    # --- messages: every one is decoded here, and every refusal is audited and shown ------------------------------

    async def _receive(self, handler: str, body: tuple[Any, ...], cls: type[T], example: str) -> T | None:
        """The message's one body as `cls`, or None after refusing it (audited, shown in the current details)."""
        try:
            return one_message(body, cls, example=example)
        except MessageRefused as err:
            await self._refuse(handler, str(err), actor=_claimed_sender(body))
            return None

    async def _from_system(self, handler: str, body: tuple[Any, ...]) -> bool:
        """Whether the message carries a valid seal of the workers' key (contracts/internal_messages.py), later
        than the last one accepted; else refused and audited like any refused message."""
        raw = body[0] if len(body) == 1 and isinstance(body[0], dict) else {}
        sealed, sent_at = raw.get(SEAL_FIELD), raw.get("sent_at")
        why = ""
        if not (isinstance(sealed, str) and sealed and isinstance(sent_at, str) and sent_at):
            why = "internal message: only the system sends it, and this one has no seal"
        elif sent_at <= self._agent.last_system_message_at:
            why = "internal message: a replay of an earlier one"
        else:
            check = SealCheck(workflow.info().workflow_id, handler, canonical(raw), sealed)
            valid = await workflow.execute_local_activity_method(
                InternalMessageActivities.check_seal, check, start_to_close_timeout=timedelta(seconds=10)
            )
            if not valid:
                why = "internal message: only the system sends it, and this seal is not the system's"
        if why:
            await self._refuse(handler, why, actor=_claimed_sender(body))
            return False
        return True

    async def _refuse(
        self,
        handler: str,
        why: str,
        *,
        actor: str,
        action: str = "message.refused",
        audited_before: bool = False,
        identity: str = "",
    ) -> None:
        """A message that cannot count: said in the status and the current details, and audited (who, which
        handler, why; never what the body held). Never raises: a refusal must not fail the workflow.

        `audited_before`: the refusals earlier versions audited too; other refusals are audited from histories
        that carry the patch marker on, so older histories replay as recorded."""
        self._agent.last_error = audit_text(f"refused {handler}: {why}", REASON_MAX)
        self._agent.refused_note = (
            f" Last message refused ({workflow.now():%Y-%m-%d %H:%M:%S} UTC): `{handler}`: "
            f"{audit_text(why, REASON_MAX)}."
        )
        self._show()
        if self._invalid:
            return  # nothing to attribute it to: the run fails at once
        if not audited_before and not workflow.patched(PATCH_AUDIT_EVERY_REFUSAL):
            return
        try:
            await self._record(
                action,
                actor=actor if actor.strip() else "unknown",
                reason=f"{handler}: {why}",
                details={"handler": handler, **({"identity": identity} if identity else {})},
                audit_only=True,
            )
        except ActivityError as err:
            workflow.logger.warning("could not audit a refused %s: %s", handler, _failure_message(err))

    def _accepted(self) -> None:
        if self._agent.refused_note:
            self._agent.refused_note = ""
            self._show()

    # --- signals, updates and queries -----------------------------------------------------------------------------

    # Bodies may be anything a person pastes into the UI: JSON null or no body counts as an empty body.
    @workflow.signal(description=f"Approve the agent while it waits for approval. Body: {DECISION_BODY}")
    async def approve(self, *body: Any) -> None:
        seq = self._signal_arrived("approve")
        decision = await self._receive("approve", body, Decision, DECISION_BODY)
        if decision is not None:
            await self._signalled("approve", True, decision, seq)

    @workflow.signal(description=f"Refuse the agent while it waits for approval. Body: {DECISION_BODY}")
    async def reject(self, *body: Any) -> None:
        seq = self._signal_arrived("reject")
        decision = await self._receive("reject", body, Decision, DECISION_BODY)
        if decision is not None:
            await self._signalled("reject", False, decision, seq)

    def _signal_arrived(self, handler: str) -> int:
        """Which signal of this name this is, counted before any await: handlers start in history order."""
        self._signals_seen[handler] = self._signals_seen.get(handler, 0) + 1
        return self._signals_seen[handler]

    def _refusal(self, decision: Decision) -> str:
        waiting = self._agent.state == AgentState.PENDING_APPROVAL and self._decision is None
        # An agent whose spec names no approvers may be approved by anyone who names themselves.
        return refusal(decision, waiting=waiting, state=self._agent.state.value, allowed=self._spec.approvers or None)

    async def _signalled(self, handler: str, approved: bool, decision: Decision, seq: int) -> None:
        why = self._refusal(decision)
        if why:
            # Signals cannot answer: the refusal is kept in the status and the current details, and audited.
            named = bool(decision.approver.strip()) and self._agent.state == AgentState.PENDING_APPROVAL
            await self._refuse(
                handler, why, actor=decision.approver, action="agent.approval_refused", audited_before=named
            )
            return
        why = await self._against_policy(handler, seq, approved, decision)
        if why:
            await self._refuse(
                handler,
                why,
                actor=decision.approver,
                action="agent.approval_refused",
                identity=self._identity(decision),
            )
            return
        await self._count(approved, decision)

    async def _against_policy(self, handler: str, seq: int, approved: bool, decision: Decision) -> str:
        """Why the account's approval policy, read now, refuses the decision ("" when it may count). Records who
        Temporal says sent it, for the audit trail and the policy's identity match."""
        if not workflow.patched(PATCH_ACCOUNT_APPROVERS):
            return ""
        identity = await caller_identity(handler, seq)
        self._identities.append((decision, identity))
        policy: AccountApprovalPolicy = await workflow.execute_activity_method(
            ApproverPolicyActivities.account_policy,
            self._spec.account_id,
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=REGISTRY_RETRY,
        )
        # Checked again after the read: another decision may have arrived meanwhile.
        why = self._refusal(decision) or policy_refusal(
            decision, policy, approved=approved, requested_by=self._input.requested_by, earlier=self._approvals
        )
        if not why and policy.require_identity_match:
            why = identity_refusal(decision.approver, identity)
        if (
            not why
            and approved
            and not self._approvals
            and policy.approvals_needed(self._spec.skills, self._spec.size) > 1
        ):
            self._approvals.append(decision)  # before any await: a second approval racing it sees this one
        return why

    async def _count(self, approved: bool, decision: Decision) -> None:
        """Accept a decision that may count: the first of two approvals is recorded, any other decides."""
        self._accepted()
        if approved and self._approvals and self._approvals[-1] is decision:
            first = decision.approver
            self._set_waiting(f"1 of 2 approvals: {first}; waiting for one more approver. " + self._gate_text)
            await self._record(
                "agent.approval_recorded",
                actor=first,
                reason=decision.reason or "first of two approvals",
                details=self._identity_details(decision),
                audit_only=True,
            )
            return
        self._decision = (approved, decision)

    def _identity(self, decision: Decision) -> str:
        return next((who for d, who in self._identities if d is decision), "")

    def _identity_details(self, decision: Decision) -> dict[str, str]:
        identity = self._identity(decision)
        return {"identity": identity} if identity else {}

    @workflow.update(
        description=f"Approve or refuse the agent; a refusal comes back to the caller. Body: {UPDATE_BODY}"
    )
    async def decide(self, *body: Any) -> AgentStatus:
        """The CLI's and the Web UI's way to decide: a refusal comes back to the caller."""
        decision = await self._receive("decide", body, ApprovalDecision, UPDATE_BODY)
        if decision is None:
            raise ApplicationError(self._agent.last_error, type="MessageRefused", non_retryable=True)
        plain = Decision(approver=decision.approver, reason=decision.reason)
        why = self._refusal(plain)
        if why:
            await self._refuse(
                "decide", why, actor=decision.approver, action="agent.approval_refused", audited_before=True
            )
            raise ApplicationError(why, type="ApproverNotAllowed", non_retryable=True)
        why = await self._against_policy("decide", 0, decision.approved, plain)
        if why:
            await self._refuse(
                "decide", why, actor=decision.approver, action="agent.approval_refused", identity=self._identity(plain)
            )
            raise ApplicationError(why, type="ApproverNotAllowed", non_retryable=True)
        await self._count(decision.approved, plain)
        if self._decision is None:
            return self.status()  # the first of two approvals: recorded, still waiting
        await workflow.wait_condition(lambda: self._agent.state != AgentState.PENDING_APPROVAL)
        return self.status()

    @decide.validator
    def _validate_decide(self, *body: Any) -> None:
        """Refuses, before anything enters history, what can never count: the Web UI's update dialog shows why."""
        waiting = self._agent.state == AgentState.PENDING_APPROVAL and self._decision is None
        kind, why = update_refusal(
            body, waiting=waiting, state=self._agent.state.value, allowed=self._spec.approvers or None
        )
        if why:
            raise ApplicationError(why, type=kind, non_retryable=True)

    @workflow.update(
        name=ADMISSION_UPDATE,
        description="For the client, with no body: answers once the agent is admitted within its account's quotas "
        "(its status), or refuses with the quota and the usage.",
    )
    async def admission(self, *args: Any) -> AgentStatus:
        await workflow.wait_condition(lambda: self._admission is not None)
        if self._admission:
            raise AdmissionRefused(self._admission).to_application_error()
        return self.status()

    @admission.validator
    def _validate_admission(self, *args: Any) -> None:
        _no_arguments("admission", args)

    @workflow.signal(description=f"Destroy the agent (or abort its provisioning). Body: {DESTROY_BODY}")
    async def destroy(self, *body: Any) -> None:
        request = await self._receive("destroy", body, DestroyRequest, DESTROY_BODY)
        if request is None:
            return
        self._accepted()
        if self._agent.destroy is None:
            self._agent.destroy = request

    @workflow.query(description="The agent's state, VM, health, approver, last error and what it waits for.")
    def status(self, *args: Any) -> AgentStatus:
        _no_arguments("status", args)
        return self._agent.status(self._spec)


def _span(seconds: int) -> str:
    """A duration as people say it: 90s, 15m, 2h, 3d (whole units only when exact)."""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _raise_first(*outcomes: object) -> None:
    """What `asyncio.gather(..., return_exceptions=True)` gave: the first failure, in the order given, is raised."""
    for outcome in outcomes:
        if isinstance(outcome, BaseException):
            raise outcome


def _failure_message(err: BaseException) -> str:
    """The innermost failure's message: that is the one that says what went wrong."""
    while err.__cause__ is not None:
        err = err.__cause__
    return str(err)[:500]


def _failure_type(err: BaseException | None) -> str:
    """The type of the first ApplicationError in a failure chain: our exception class name."""
    while err is not None:
        if isinstance(err, ApplicationError):
            return err.type or ""
        err = err.__cause__
    return ""


def _placements(spec: AgentSpec) -> list[Location]:
    if spec.provider == "local":
        return [Location("local", "", "this machine", exact=True)]
    return placements(spec.provider, spec.region, exact_only=spec.strict_region)


def _claimed_sender(body: tuple[Any, ...]) -> str:
    """Who a refused message says it is from (its `approver` or `requested_by`, when a string), else "unknown"."""
    if len(body) == 1 and isinstance(body[0], dict):
        for key in ("approver", "requested_by"):
            value = body[0].get(key)
            if isinstance(value, str) and value.strip():
                return value
    return "unknown"


def _no_arguments(query: str, args: tuple[Any, ...]) -> None:
    # Queries are read-only: nothing to audit, but the sender learns why instead of a TypeError.
    if args:
        raise ApplicationError(f"query {query} takes no arguments; {len(args)} were sent", type="MessageRefused")
