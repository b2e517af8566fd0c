"""KeyRotation activities: per agent, rotate the Transit key, rewrap its stored data, THEN raise min_decryption_version.

Plain `def`: hvac and SQLAlchemy are synchronous, so these run in the worker's thread pool. Every step is idempotent,
so a retried batch repeats nothing harmful: a key rotated by this run is not rotated again, rows already at the latest
version are not rewrapped, raising the minimum twice is a no-op, and the audit event has a per run+agent key.
"""

from __future__ import annotations

from temporalio import activity

from activities.errors import SecretsRejected
from activities.registry import _translate_errors as registry_errors
from activities.secrets.agent_vault import AgentVault
from contracts.maintenance_models import (
    ROTATION_ACTOR,
    AgentRotation,
    RotationBatch,
    RotationBatchResult,
    RotationInput,
    RotationTargets,
)
from contracts.models import Transition
from store import AgentDataRecord, Registry

# Ciphertexts per Transit rewrap request.
REWRAP_CHUNK = 100
# Rewrap passes per agent: a concurrent put can replace a row between our read and our compare-and-set.
REWRAP_PASSES = 3


class RotationActivities:
    def __init__(self, vault: AgentVault, registry: Registry) -> None:
        self.vault = vault
        self.registry = registry

    @activity.defn
    def list_rotation_targets(self, _request: RotationInput) -> RotationTargets:
        """Every agent that has a Transit key (Vault is the truth about keys, whatever the registry says)."""
        return RotationTargets(self.vault.agents_with_keys())

    @activity.defn
    def rotate_keys(self, batch: RotationBatch) -> RotationBatchResult:
        results = []
        for done, agent_id in enumerate(batch.agent_ids):
            activity.heartbeat(done)
            results.append(self._rotate_one(batch, agent_id))
        return RotationBatchResult(results)

    def _rotate_one(self, batch: RotationBatch, agent_id: str) -> AgentRotation:
        try:
            return self._rotate(batch, agent_id)
        except SecretsRejected as exc:
            if self.vault.transit_key(agent_id) is None:
                return AgentRotation(agent_id, rotated=False)  # destroyed while we worked on it
            # One agent Vault refuses (a policy or key misconfiguration) must not hold back the fleet's rotation;
            # it is reported, and the next run tries again. Transient errors still fail the batch, to be retried.
            activity.logger.warning("key rotation of agent %s refused: %s", agent_id, exc)
            return AgentRotation(agent_id, rotated=False, error=str(exc)[:300])

    def _rotate(self, batch: RotationBatch, agent_id: str) -> AgentRotation:
        done = self._done_before(batch.run_id, agent_id)
        if done is not None:
            return done  # an earlier attempt of this batch finished this agent and audited it
        key = self.vault.transit_key(agent_id)
        if key is None:
            return AgentRotation(agent_id, rotated=False)  # destroyed meanwhile: nothing to protect
        # Transit stamps versions in whole seconds. A version from a later second than this run's start was made by
        # an earlier attempt that stopped before its audit; anything older is rotated. An attempt within the start's
        # second costs one extra version; a Vault clock ahead of ours can only skip a version made within that skew
        # before the run, which is as fresh as the one we would make.
        if key.created.get(key.latest_version, 0) > int(batch.started_at.timestamp()):
            latest = key.latest_version
            previous = max(latest - 1, 1)
        else:
            previous = key.latest_version
            latest = self.vault.rotate_key(agent_id)

        rewrapped, blocking, unreadable = self._rewrap(agent_id, latest, key.min_decryption_version)
        # Only when every item still readable is at the latest version: raising earlier would make data unreadable.
        min_raised = blocking == 0
        if min_raised and key.min_decryption_version < latest:
            self.vault.set_min_decryption_version(agent_id, latest)
        result = AgentRotation(agent_id, True, previous, latest, rewrapped, unreadable, min_raised)
        self._audit(batch.run_id, result)
        activity.logger.info(
            "rotated key of agent %s to v%d: %d item(s) rewrapped, %d unreadable",
            agent_id,
            latest,
            rewrapped,
            unreadable,
        )
        return result

    def _rewrap(self, agent_id: str, latest: int, min_decryption: int) -> tuple[int, int, int]:
        """Rewrap every row below `latest`; returns (rewrapped, refused-but-readable, refused)."""
        rewrapped = 0
        refused: dict[str, AgentDataRecord] = {}
        for _ in range(REWRAP_PASSES):
            with registry_errors("agent_data_of"):
                rows = [r for r in self.registry.agent_data_of(agent_id, below_version=latest) if r.name not in refused]
            if not rows:
                break
            for start in range(0, len(rows), REWRAP_CHUNK):
                chunk = rows[start : start + REWRAP_CHUNK]
                for row, new in zip(chunk, self.vault.rewrap(agent_id, [r.ciphertext for r in chunk]), strict=True):
                    if new is None:
                        refused[row.name] = row
                        continue
                    with registry_errors("replace_ciphertext"):
                        swapped = self.registry.replace_ciphertext(
                            agent_id, row.name, old=row.ciphertext, new=new.ciphertext, key_version=new.key_version
                        )
                    rewrapped += int(swapped)  # lost the race to a put: the next pass sees the new row
        # Items below the key's minimum were unreadable before this run; they do not hold the minimum back.
        blocking = sum(1 for row in refused.values() if row.key_version >= min_decryption)
        with registry_errors("agent_data_of"):
            # A row still below latest after every pass (a put racing each one) holds the minimum back too.
            left = [r for r in self.registry.agent_data_of(agent_id, below_version=latest) if r.name not in refused]
        return rewrapped, blocking + len(left), len(refused)

    def _done_before(self, run_id: str, agent_id: str) -> AgentRotation | None:
        with registry_errors("event_details"):
            details = self.registry.event_details(_event_key(run_id, agent_id))
        if details is None:
            return None
        return AgentRotation(
            agent_id,
            rotated=True,
            from_version=int(details.get("from_version", "0")),
            to_version=int(details.get("to_version", "0")),
            rewrapped=int(details.get("rewrapped", "0")),
            unreadable=int(details.get("unreadable", "0")),
            min_raised=details.get("min_raised") == "true",
        )

    def _audit(self, run_id: str, r: AgentRotation) -> None:
        with registry_errors("record_transition"):
            agent = self.registry.get(r.agent_id)
            if agent is None:
                return  # a key no registered agent owns: the orphan sweep's business, nothing to attach an event to
            self.registry.record(
                Transition(
                    event_key=_event_key(run_id, r.agent_id),
                    agent_id=r.agent_id,
                    account_id=agent.account_id,
                    state=agent.state,
                    action="keys.rotated",
                    actor=ROTATION_ACTOR,
                    details={
                        "from_version": str(r.from_version),
                        "to_version": str(r.to_version),
                        "rewrapped": str(r.rewrapped),
                        "unreadable": str(r.unreadable),
                        "min_raised": str(r.min_raised).lower(),
                    },
                    audit_only=True,
                )
            )


def _event_key(run_id: str, agent_id: str) -> str:
    return f"keys.rotated:{run_id}:{agent_id}"
