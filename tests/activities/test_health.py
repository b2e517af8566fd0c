"""Reading a bridge's /health answer: what the bridge says is narrowed to the health values payloads may carry."""

from __future__ import annotations

import httpx
import pytest

from activities.health import parse_health
from contracts.models import HEALTH_STATUSES


def answer(status_code: int, body: object) -> httpx.Response:
    return httpx.Response(status_code, json=body)


@pytest.mark.parametrize("said", ["starting", "healthy", "unhealthy"])
def test_the_bridge_statuses_pass_through(said: str) -> None:
    body = {"agent_id": "a1", "status": said, "secrets_loaded": 2}
    report = parse_health("a1", answer(200 if said == "healthy" else 503, body))
    assert report.status == said and report.healthy is (said == "healthy")


@pytest.mark.parametrize("said", ["degraded", "HEALTHY", "", 7, None, ["healthy"]])
def test_a_status_we_do_not_know_reads_as_invalid_and_unhealthy(said: object) -> None:
    report = parse_health("a1", answer(200, {"agent_id": "a1", "status": said, "secrets_loaded": 2}))
    assert (report.healthy, report.status) == (False, "invalid")
    assert "is not one we know" in report.reason


def test_a_missing_status_is_unknown_not_healthy() -> None:
    report = parse_health("a1", answer(200, {"agent_id": "a1", "secrets_loaded": 2}))
    assert (report.healthy, report.status) == (False, "unknown")
    assert report.status in HEALTH_STATUSES
