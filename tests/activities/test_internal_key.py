"""The workers' seal key for system messages: configured, too short, required in production, or this process's."""

from __future__ import annotations

import pytest

from activities.internal_messages import INTERNAL_KEY_ENV, InternalKeyError, internal_key
from contracts.internal_messages import SealCheck, canonical, seal_matches, sealed_body


def test_the_configured_key_is_used_and_a_short_one_refused() -> None:
    assert internal_key({INTERNAL_KEY_ENV: "k" * 32}) == b"k" * 32
    with pytest.raises(InternalKeyError, match="at least 32"):
        internal_key({INTERNAL_KEY_ENV: "short"})


def test_production_requires_a_key_development_gets_one_per_process() -> None:
    with pytest.raises(InternalKeyError, match="required when LOBSTACK_ENV=production"):
        internal_key({}, required=True)
    assert internal_key({}) == internal_key({}) and len(internal_key({})) == 32


def test_a_seal_binds_the_body_the_workflow_and_the_handler() -> None:
    key = b"k" * 32
    body = sealed_body(key, "agent-a", "health_changed", {"healthy": False, "status": "unreachable"})
    assert seal_matches(key, SealCheck("agent-a", "health_changed", canonical(body), body["seal"]))
    for workflow_id, handler, changed in [
        ("agent-b", "health_changed", body),
        ("agent-a", "update_skills", body),
        ("agent-a", "health_changed", {**body, "healthy": True}),
    ]:
        assert not seal_matches(key, SealCheck(workflow_id, handler, canonical(changed), body["seal"]))
    assert not seal_matches(b"x" * 32, SealCheck("agent-a", "health_changed", canonical(body), body["seal"]))
