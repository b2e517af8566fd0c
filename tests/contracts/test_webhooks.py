"""The notice formats and their signature, as a receiver checks them (contracts/webhooks.py)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from contracts.spec import SpecError
from contracts.webhooks import (
    ApprovalNotice,
    encode,
    generic_body,
    sign,
    slack_body,
    validate_webhook_format,
    validate_webhook_url,
    verify_signature,
)

SECRET = "whsec_test-secret-of-the-receiver"
NOW = 1_764_871_234


def _notice(**fields: object) -> ApprovalNotice:
    notice = ApprovalNotice(
        notice_id="approval-a-r1/run/1",
        type="approval.pending",
        kind="tool",
        account_id="acme",
        agent_id="a",
        workflow_id="approval-a-r1",
        run_id="run",
        summary="Allow agent a of account acme to run email.send (high risk)",
        approvers=["alice"],
        deadline=datetime(2026, 12, 4, 20, 0, tzinfo=UTC),
        cli='lobstack approvals approve approval-a-r1 --approver YOUR_NAME --reason "why"',
    )
    for name, value in fields.items():
        setattr(notice, name, value)
    return notice


def test_a_signed_body_verifies_and_any_change_or_a_stale_timestamp_is_refused() -> None:
    body = encode(generic_body(_notice(), ui_url="http://ui/x"))
    signature = sign(SECRET, NOW, body)
    assert signature.startswith("v1=") and len(signature) == 3 + 64

    def check(*, secret: str = SECRET, stamp: str = str(NOW), sent: bytes = body, now: int = NOW) -> str:
        return verify_signature(secret, timestamp=stamp, signature=signature, body=sent, now=now)

    assert check(now=NOW + 10) == ""
    assert "does not match" in check(sent=body.replace(b"alice", b"mallory"))
    assert "does not match" in check(secret="another-secret")
    assert "does not match" in check(stamp=str(NOW + 1))
    assert "replay" in check(now=NOW + 301)
    assert "whole number" in check(stamp="soon")


def test_the_generic_body_carries_what_an_approver_needs() -> None:
    body = generic_body(_notice(decision="approved", decided_by="alice", reason="fine"), ui_url="http://ui/link")
    assert body["type"] == "approval.pending" and body["ui_url"] == "http://ui/link"
    assert body["deadline"] == "2026-12-04T20:00:00+00:00" and body["approvers"] == ["alice"]
    assert body["decision"] == {"outcome": "approved", "by": "alice", "reason": "fine"}
    assert "decision" not in generic_body(_notice(), ui_url="u")


def test_the_slack_body_is_an_incoming_webhook_message_with_link_and_command() -> None:
    body = slack_body(_notice(), ui_url="http://ui/link")
    assert set(body) == {"text", "blocks"} and body["text"].startswith("Approval needed: ")
    texts = [b["text"]["text"] for b in body["blocks"]]
    assert texts[1] == "<http://ui/link|Open in the Temporal Web UI>"
    assert texts[2] == f"```{_notice().cli}```"
    decided = slack_body(_notice(type="approval.decided", decision="rejected", decided_by="bob"), ui_url="u")
    assert "Outcome: *rejected* by bob" in decided["blocks"][0]["text"]["text"] and len(decided["blocks"]) == 2


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("", "is required"),
        ("ftp://x.example.com", "http:// or https://"),
        ("https://", "must name a host"),
        ("https://u:p@x.example.com", "user or password"),
        ("https://x.example.com:99999/", "not a valid URL"),
        ("https://x.example.com/a b", "spaces"),
    ],
)
def test_a_bad_url_is_refused_naming_the_field(url: str, says: str) -> None:
    with pytest.raises(SpecError) as refused:
        validate_webhook_url(url)
    assert refused.value.field == "url" and says in str(refused.value)


def test_a_good_url_and_the_two_formats_pass() -> None:
    assert validate_webhook_url("https://hooks.slack.com/services/T/B/x") == "https://hooks.slack.com/services/T/B/x"
    assert validate_webhook_url("http://127.0.0.1:8080/hook") == "http://127.0.0.1:8080/hook"
    assert [validate_webhook_format(f) for f in ("generic", "slack")] == ["generic", "slack"]
    with pytest.raises(SpecError, match="format: 'teams' is not allowed; use one of: generic, slack"):
        validate_webhook_format("teams")
