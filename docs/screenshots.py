"""Refresh the Web UI screenshots in docs/: a pending tool approval, found, read and approved from the UI.

Needs Debian's Chromium (`apt-get install -y chromium`) and the docs extra (`pip install -e '.[docs]'`, which brings
the `playwright` driver; never run `playwright install`, it downloads a browser). Run: `.venv/bin/python
docs/screenshots.py`. It starts its own Temporal dev server, OpenBao, cloudsim and worker, and stops them after.
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
import uuid
from pathlib import Path
from urllib.parse import quote

from playwright.async_api import Page, async_playwright
from temporalio.client import WorkflowHandle

from clients.client import LobstackClient
from contracts.identifiers import approval_id as approval_workflow_id
from contracts.models import AgentState, ApprovalState, ApprovalStatus, ToolApprovalInput
from contracts.spec import AgentSpec
from devstack.stack import StackOptions, dev_stack
from workflows.tool_approval import ToolApprovalWorkflow

DOCS = Path(__file__).parent
DEBUG = Path(tempfile.gettempdir()) / "lobstack-screenshot-debug.png"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--no-first-run",
]


async def shoot(page: Page, name: str) -> None:
    await page.wait_for_timeout(800)  # let the UI finish its transitions; this only affects the picture
    await page.screenshot(path=str(DOCS / name))
    print(f"wrote docs/{name}")


async def drive(page: Page, ui: str, approval_id: str, handle: WorkflowHandle) -> ApprovalStatus:
    """What an approver does: find pending approvals, read one, approve it with the Send a Signal dialog."""
    query = quote('LobstackApprovalState="pending"')
    await page.goto(f"{ui}/namespaces/default/workflows?query={query}")
    await page.get_by_text(approval_id).first.wait_for()
    await shoot(page, "approvals-pending-list.png")

    await page.get_by_role("link", name=approval_id).first.click()
    await page.get_by_text("User Metadata").first.click()
    await page.get_by_text("Current Details").first.wait_for()
    await page.wait_for_timeout(1500)  # the Markdown of the details renders a moment after the heading
    await shoot(page, "approval-pending-details.png")

    await page.get_by_role("button", name="More Actions").click()
    await page.get_by_role("menuitem", name="Send a Signal").click()
    dialog = page.locator("#signal-confirmation-modal[open]")
    await dialog.get_by_test_id("signal-select-button").click()
    await dialog.get_by_role("option", name="approve", exact=True).click()
    await dialog.get_by_role("textbox", name="Data").click()
    await page.keyboard.type(json.dumps({"approver": "alice", "reason": "expected board mail"}))
    await shoot(page, "approval-signal-dialog.png")
    await dialog.get_by_test_id("confirm-modal-button").click()

    result: ApprovalStatus = await handle.result()
    await page.reload()
    await page.get_by_text("Completed").first.wait_for()
    await shoot(page, "approval-approved.png")

    # What `lobstack dev` installs: the three maintenance schedules.
    await page.goto(f"{ui}/namespaces/default/schedules")
    await page.get_by_text("lobstack-fleet-health").first.wait_for()
    await shoot(page, "schedules.png")
    return result


async def main() -> int:
    home = Path(tempfile.mkdtemp(prefix="lobstack-shots-"))
    # The codec server answers the UI without a token here (loopback only): the shots show decrypted payloads.
    async with dev_stack(home, StackOptions(codec_anonymous=True, schedules=True)) as stack:
        client = LobstackClient(stack.client)
        await client.add_approver("acme", "alice")  # only an account's approvers decide (issue 13)
        agent_id = await client.create_agent(
            AgentSpec(account_id="acme", name="mailer", skills=["email.send"], approvers=["alice"])
        )
        await client.wait_for(agent_id, {AgentState.RUNNING}, timeout_s=60)
        request = ToolApprovalInput(
            agent_id=agent_id,
            account_id="acme",
            request_id=uuid.uuid4().hex[:8],
            tool="email.send",
            arguments={"to": "board@example.com", "subject": "Q3 numbers", "api_key": "[redacted]"},
            requested_by=f"agent-{agent_id}",
            approvers=["alice"],
        )
        approval_id = approval_workflow_id(agent_id, request.request_id)
        handle = await stack.client.start_workflow(
            ToolApprovalWorkflow.run,
            request,
            id=approval_id,
            task_queue="lobstack",
            static_summary=f"Approve `{request.tool}` for agent {agent_id}?",
        )
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
            page = await browser.new_page(viewport={"width": 1440, "height": 900})
            page.set_default_timeout(30_000)
            try:
                result = await drive(page, stack.temporal.ui_url, approval_id, handle)
            except Exception:
                await page.screenshot(path=str(DEBUG))
                print(f"failed; the page as it was is in {DEBUG}", file=sys.stderr)
                raise
            finally:
                await browser.close()
        await client.destroy(agent_id)
        await client.result(agent_id)
    if result.state != ApprovalState.APPROVED or result.decided_by != "alice":
        print(f"approval ended {result.state.value} by {result.decided_by!r}", file=sys.stderr)
        return 1
    print(f"approved from the Web UI's signal dialog by {result.decided_by}")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
