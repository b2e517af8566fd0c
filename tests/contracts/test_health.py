"""The "compromised" health: a status value of its own, with old bridges' reason text still understood."""

from __future__ import annotations

import pytest

from contracts.health import BRIDGE_STATUSES, COMPROMISED, is_compromised
from contracts.models import HealthReport, HealthStatus


def test_the_compromised_status_is_one_of_the_bridge_statuses() -> None:
    assert COMPROMISED in BRIDGE_STATUSES


def test_a_compromised_status_is_compromised_whatever_the_reason() -> None:
    assert is_compromised(HealthReport("a1", False, "compromised", reason="anything"))


def test_an_old_bridge_saying_it_in_words_is_still_compromised() -> None:
    legacy = "bootstrap credential rejected: already used or expired (possible interception)"
    assert is_compromised(HealthReport("a1", False, "unhealthy", reason=legacy))


@pytest.mark.parametrize(
    ("status", "reason"),
    [
        ("healthy", ""),
        ("unhealthy", "vault unreachable at http://127.0.0.1:1: ConnectionError"),
        ("starting", "introduction in progress"),
        # Only a reason that starts with the old words counts: a bridge cannot be framed by text quoted inside one.
        ("unhealthy", "agent API not served: bootstrap credential rejected"),
    ],
)
def test_other_answers_are_not_compromised(status: HealthStatus, reason: str) -> None:
    assert not is_compromised(HealthReport("a1", status == "healthy", status, reason=reason))
