"""Regenerate the screenshots of docs/approvals.md by running the browser test that takes them.

    .venv/bin/python -m tests.browser.screens

Needs what the test needs: Debian's chromium, OpenBao and Temporal from the dev extra (no PostgreSQL: the SQLite runs
take the pictures).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "docs" / "approvals"


def main() -> int:
    os.environ["LOBSTACK_UI_SCREENSHOTS"] = str(SHOTS)
    test = Path(__file__).with_name("test_web_ui_approvals.py")
    return int(pytest.main([str(test), "-q", "-p", "no:cacheprovider", "-k", "sqlite"]))


if __name__ == "__main__":
    sys.exit(main())
