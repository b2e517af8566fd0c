"""Record the histories the replay suite checks: `make histories`, or `python -m tests.replay.record [names...]`.

Starts the real components as the tests do (a Temporal dev server with the approval search attribute, a second one
that suggests continue-as-new after a few dozen events, OpenBao, cloudsim), runs every scenario of
tests/replay/scenarios.py on a fresh stack whose client and workers encrypt payloads with the TEST-ONLY key
(tests/replay/codec_test_key.py), and saves each run of each execution as
`tests/replay/histories/<version>/<name>.json` (a continued-as-new execution as `<name>_run1.json`, `_run2.json`, ...).

Record when a version is cut; an existing file is kept unless `--replace` is given, since a released version's
histories are what its still-open runs look like.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import tempfile
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager, contextmanager
from pathlib import Path

from temporalio.client import Client, WorkflowHistory
from temporalio.testing import WorkflowEnvironment

import devstack
from tests.replay.codec_test_key import recording_converter
from tests.replay.recorded import HISTORIES, project_version
from tests.replay.scenarios import SCENARIOS, Scenario, Stacks
from tests.stack import Stack, make_stack, reap
from workers.converter import with_converter
from workflows.search_attributes import APPROVAL_KEYS

__all__ = ["main", "record", "runs_of", "save"]

# As tests/workflows/test_continue_as_new.py: provisioning alone passes it, so a lifecycle continues as new at once.
SUGGEST_CONTINUE_AS_NEW_AFTER = 40


async def runs_of(client: Client, workflow: str) -> list[WorkflowHistory]:
    """Every run of an execution, first run first: the chain back from the latest run through continue-as-new."""
    runs: list[WorkflowHistory] = []
    run_id: str | None = None
    while True:
        history = await client.get_workflow_handle(workflow, run_id=run_id).fetch_history()
        runs.insert(0, history)
        started = history.events[0].workflow_execution_started_event_attributes
        if not started.continued_execution_run_id:
            return runs
        run_id = started.continued_execution_run_id


def save(directory: Path, name: str, runs: Sequence[WorkflowHistory], *, replace: bool) -> list[Path]:
    """Write each run as `<name>.json`, or `<name>_run<n>.json` when it continued as new; returns what was written."""
    names = [name] if len(runs) == 1 else [f"{name}_run{n}" for n in range(1, len(runs) + 1)]
    saved = []
    for file_name, history in zip(names, runs, strict=True):
        path = directory / f"{file_name}.json"
        if path.exists() and not replace:
            print(f"kept {path.relative_to(directory.parent)} (recorded before; --replace records it again)")
            continue
        path.write_text(history.to_json() + "\n")
        saved.append(path)
        print(f"saved {path.relative_to(directory.parent)} ({len(history.events)} events)")
    return saved


@asynccontextmanager
async def _dev_server(*extra_args: str) -> AsyncIterator[WorkflowEnvironment]:
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=devstack.temporal_binary(),
        search_attributes=APPROVAL_KEYS,
        dev_server_extra_args=[*devstack.dynamic_config_flags(), *extra_args],
    )
    try:
        yield env
    finally:
        await env.shutdown()


@contextmanager
def _stack(env: WorkflowEnvironment, openbao: devstack.OpenBaoDev, workdir: Path) -> Iterator[Stack]:
    """A fresh stack (registry, queue, VM directory) whose client and workers share the test-only codec key."""
    workdir.mkdir(parents=True)
    client = with_converter(env.client, recording_converter())
    made = make_stack(client, openbao, f"sqlite:///{workdir / 'registry.db'}", workdir)
    try:
        yield made
    finally:
        reap(made)


async def record(chosen: Sequence[Scenario], directory: Path, *, replace: bool) -> list[Path]:
    saved: list[Path] = []
    with tempfile.TemporaryDirectory(prefix="lobstack-record-") as tmp:
        work = Path(tmp)
        openbao = devstack.start_openbao(work / "openbao")
        sim = devstack.start_simulator(work / "cloudsim", boot_latency_s=0.2)
        try:
            async with AsyncExitStack() as servers:
                usual = await servers.enter_async_context(_dev_server())
                short = await servers.enter_async_context(
                    _dev_server(
                        "--dynamic-config-value",
                        f"limit.historyCount.suggestContinueAsNew={SUGGEST_CONTINUE_AS_NEW_AFTER}",
                    )
                )
                for n, chosen_scenario in enumerate(chosen):
                    with (
                        _stack(usual, openbao, work / f"{n}-main") as stack,
                        _stack(short, openbao, work / f"{n}-short") as short_stack,
                    ):
                        print(f"recording {chosen_scenario.name} ...", flush=True)
                        execution = await chosen_scenario.run(Stacks(stack, short_stack, sim))
                        runs = await runs_of(execution.stack.temporal, execution.workflow_id)
                        saved += save(directory, chosen_scenario.name, runs, replace=replace)
        finally:
            sim.stop()
            openbao.stop()
    return saved


def main(argv: Sequence[str] | None = None) -> int:
    names = [s.name for s in SCENARIOS]
    parser = argparse.ArgumentParser(prog="python -m tests.replay.record", description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument(
        "names", nargs="*", metavar="NAME", help=f"scenarios to record (default: all): {', '.join(names)}"
    )
    parser.add_argument(
        "--version", default=project_version(), help="directory under histories/ (default: %(default)s)"
    )
    parser.add_argument("--replace", action="store_true", help="record again a history that exists already")
    args = parser.parse_args(argv)
    # Scenarios fail activities on purpose (an agent never healthy, a cloud out of capacity): the SDK's warning with
    # a traceback for each would read as a fault of the recording.
    logging.getLogger("temporalio.activity").setLevel(logging.ERROR)
    unknown = sorted(set(args.names) - set(names))
    if unknown:
        parser.error(f"no such scenario: {', '.join(unknown)}; choose from {', '.join(names)}")
    chosen = [s for s in SCENARIOS if not args.names or s.name in args.names]
    (HISTORIES / args.version).mkdir(parents=True, exist_ok=True)
    saved = asyncio.run(record(chosen, HISTORIES / args.version, replace=args.replace))
    print(f"{len(saved)} histories saved under {HISTORIES / args.version}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
