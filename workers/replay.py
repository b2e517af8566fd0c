"""A `Replayer` built with the workflow worker's own options, so a recorded history replays as a worker would run it.

A replay that differs from the worker in its sandbox, logic flags, interceptors or converter can pass where the worker
would fail (or the reverse): everything here comes from the same definitions `build_workers` uses (workers/worker.py).
"""

from __future__ import annotations

from temporalio.converter import DataConverter
from temporalio.worker import Replayer

from workers.converter import worker_converter
from workers.library_hooks import apply_activation_jobs_as_one_batch
from workers.worker import WORKFLOWS, worker_interceptors

__all__ = ["workflow_replayer"]


def workflow_replayer(converter: DataConverter) -> Replayer:
    """A replayer of every workflow the workflow queue runs; `converter` must hold the codec keys of the histories."""
    replayer = Replayer(
        workflows=list(WORKFLOWS),
        interceptors=worker_interceptors(),
        data_converter=worker_converter(converter),
    )
    # The worker sets this flag by default; histories that recorded it replay with it, older ones without it.
    apply_activation_jobs_as_one_batch(replayer)
    return replayer
