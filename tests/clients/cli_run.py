"""Run `lobstack` as an operator does, a separate process through its real entry point, and check how it failed."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass

# What an operator's shell may carry that would change the outcome: the tests set each of these themselves.
_CLEARED = (
    "LOBSTACK_CODEC_KEYS",
    "LOBSTACK_CODEC_KEYS_FILE",
    "LOBSTACK_CODEC_WRAPPED_KEYS",
    "LOBSTACK_DEBUG",
    "LOBSTACK_TASK_QUEUE",
    "TEMPORAL_ADDRESS",
    "TEMPORAL_NAMESPACE",
    "VAULT_ADDR",
    "VAULT_TOKEN",
    "DATABASE_URL",
)


@dataclass(frozen=True)
class Done:
    args: tuple[str, ...]
    code: int
    out: str
    err: str

    def __str__(self) -> str:
        return f"lobstack {' '.join(self.args)} -> {self.code}\nstdout: {self.out[-2000:]}\nstderr: {self.err[-4000:]}"


def environment(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _CLEARED}
    env.update(extra or {})
    return env


def _command(args: tuple[str, ...]) -> list[str]:
    # `python -m clients.cli` runs clients.cli:run, the console script's entry point.
    return [sys.executable, "-m", "clients.cli", *args]


def run(*args: str, env: Mapping[str, str] | None = None, stdin: bytes = b"", timeout: float = 60) -> Done:
    done = subprocess.run(
        _command(args), input=stdin, capture_output=True, timeout=timeout, check=False, env=environment(env)
    )
    return Done(args, done.returncode, done.stdout.decode(errors="replace"), done.stderr.decode(errors="replace"))


async def arun(*args: str, env: Mapping[str, str] | None = None, stdin: bytes = b"", limit_s: float = 150) -> Done:
    """`run` off the test's event loop: the workers of the test's stack keep running meanwhile."""
    proc = await asyncio.create_subprocess_exec(
        *_command(args),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=environment(env),
    )
    out, err = await asyncio.wait_for(proc.communicate(stdin), timeout=limit_s)
    assert proc.returncode is not None
    return Done(args, proc.returncode, out.decode(errors="replace"), err.decode(errors="replace"))


_SOURCE_PATH = re.compile(r"\.py\b|File \"")


def assert_ok(done: Done) -> None:
    assert done.code == 0, done
    assert "Traceback" not in done.err, done


def assert_failed(done: Done, status: int, *fragments: str) -> None:
    """Exactly one line on stderr, `lobstack: error: ...`, holding each fragment; the documented status; no traceback,
    no stack trace and no source path (of this machine or a worker's)."""
    assert done.code == status, done
    assert "Traceback" not in done.err, done
    lines = [line for line in done.err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("lobstack: error: "), done
    assert not _SOURCE_PATH.search(lines[0]), done
    for fragment in fragments:
        assert fragment in lines[0], f"{fragment!r} missing: {done}"
