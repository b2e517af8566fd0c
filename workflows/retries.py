"""Every retry policy of the workflows, in one place: how often Temporal tries each kind of step again.

Temporal owns retries (every attempt is visible in history); whether a failure is retried at all is decided by its
error class (`activities/errors.py`, `retryable`), and these policies only bound how often and how long.
Provisioning gives up after a bounded number of attempts, then cleans up; cleanup never gives up.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio.common import RetryPolicy

# A create is tried a few times on one placement (each attempt adopts what a lost answer made), then fails over.
CREATE_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=2), maximum_interval=timedelta(seconds=30), maximum_attempts=5
)
# Making the agent's firewall before its VM: a few tries on one placement (each looks up first), then fail over.
FIREWALL_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=2), maximum_interval=timedelta(seconds=30), maximum_attempts=5
)
# A warm pool's create: one more try, then the pool's own backoff and pause (workflows/warm_pool.py) take over, so a
# broken image or an exhausted quota is not retried without end.
POOL_CREATE_RETRY = RetryPolicy(initial_interval=timedelta(seconds=2), maximum_attempts=2)
# Waiting for a VM to boot: each attempt already polls through a run of failed status calls.
BOOT_WAIT_RETRY = RetryPolicy(maximum_attempts=3)
# The health check: each attempt already probes until the deadline.
HEALTH_WAIT_RETRY = RetryPolicy(maximum_attempts=5)
# Minting secrets, revoking tokens and the other provisioning steps.
PROVISION_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=30), maximum_attempts=8
)
# Cleanup and audit writes: until they succeed (0 = no limit).
CLEANUP_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=60), maximum_attempts=0
)
REGISTRY_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=60), maximum_attempts=0
)
# Verifying nothing is left: a few quick looks; a residue found fails the step, and cleanup runs again.
VERIFY_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=5), maximum_attempts=3
)
# A create whose outcome is unknown is looked for until the provider answers, up to the input's bound.
ABANDONED_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=15), maximum_attempts=0
)
# The fleet monitor runs again in 30 s anyway: one retry, then the next run.
FLEET_PROBE_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_attempts=2)
# Key rotation and the orphan sweep: bounded; the next scheduled run picks up what a failed one left.
MAINTENANCE_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=2), maximum_interval=timedelta(minutes=1), maximum_attempts=10
)

# Reading who sent a decision from the history: a few quick looks; not found, the decision records "unknown".
IDENTITY_RETRY = RetryPolicy(initial_interval=timedelta(milliseconds=200), maximum_attempts=5)

# Webhook notices: retried with backoff within the notice's schedule-to-close budget (workflows/notices.py); a
# receiver down longer than that misses the notice, which is audited.
NOTICE_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1), backoff_coefficient=2.0, maximum_interval=timedelta(minutes=1)
)

__all__ = [
    "ABANDONED_RETRY",
    "BOOT_WAIT_RETRY",
    "CLEANUP_RETRY",
    "CREATE_RETRY",
    "FIREWALL_RETRY",
    "FLEET_PROBE_RETRY",
    "HEALTH_WAIT_RETRY",
    "IDENTITY_RETRY",
    "MAINTENANCE_RETRY",
    "NOTICE_RETRY",
    "POOL_CREATE_RETRY",
    "PROVISION_RETRY",
    "REGISTRY_RETRY",
    "VERIFY_RETRY",
]
