"""Where recorded histories live: `histories/<version>/<name>.json`, one file per workflow run.

`<version>` is the project version that recorded them (pyproject.toml); every version kept here is one whose runs may
still be open somewhere, so today's workflow code must replay all of them.
"""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from temporalio.client import WorkflowHistory

__all__ = ["HISTORIES", "Recorded", "project_version", "recorded"]

HISTORIES = Path(__file__).parent / "histories"
_PYPROJECT = Path(__file__).parents[2] / "pyproject.toml"


def project_version() -> str:
    return str(tomllib.loads(_PYPROJECT.read_text())["project"]["version"])


@dataclass(frozen=True)
class Recorded:
    """One recorded run: `version/name` names it in test ids and failures."""

    version: str
    name: str
    path: Path

    @property
    def label(self) -> str:
        return f"{self.version}/{self.name}"

    def workflow_type(self) -> str:
        started = self.document()["events"][0]["workflowExecutionStartedEventAttributes"]
        return str(started["workflowType"]["name"])

    def document(self) -> dict[str, Any]:
        loaded: dict[str, Any] = json.loads(self.path.read_text())
        return loaded

    def history(self) -> WorkflowHistory:
        return WorkflowHistory.from_json(f"recorded-{self.name}", self.path.read_text())


def recorded() -> list[Recorded]:
    """Every recorded run of every version, in a stable order."""
    return [Recorded(path.parent.name, path.stem, path) for path in sorted(HISTORIES.glob("*/*.json"))]
