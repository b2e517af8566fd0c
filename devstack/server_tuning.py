"""Temporal server settings every stack of ours runs with: the dev server's flags here, the same values in
deploy/compose/temporal/dynamicconfig (tests/deploy checks that they agree).

The history service reads each of its internal task queues (transfer: workflow and activity tasks to dispatch;
timer; visibility: search attributes; outbound) at most 20 times a second by default. Under a steady load every
workflow task and every activity then waits for the next read: measured on the dev server, 44 ms median from an
activity's schedule to its start and 50 ms between one activity's end and the next one's schedule, against 1.7 ms
and 5.4 ms with these reads uncapped (a 10-activity workflow run back to back; bench/warm_pool.py shows it per step).
A provisioning is about ten such steps one after another, so this setting alone is worth most of a second.
"""

from __future__ import annotations

import json

__all__ = ["SERVER_DYNAMIC_CONFIG", "dynamic_config_flags"]

QUEUE_READS_PER_S = 1000

QUEUES = ("transfer", "timer", "visibility", "outbound")
SERVER_DYNAMIC_CONFIG: dict[str, int] = {f"history.{queue}ProcessorMaxPollRPS": QUEUE_READS_PER_S for queue in QUEUES}


def dynamic_config_flags() -> list[str]:
    """`temporal server start-dev` arguments that set SERVER_DYNAMIC_CONFIG."""
    flags: list[str] = []
    for key, value in SERVER_DYNAMIC_CONFIG.items():
        flags += ["--dynamic-config-value", f"{key}={json.dumps(value)}"]
    return flags
