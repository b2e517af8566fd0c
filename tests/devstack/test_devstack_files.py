"""Server logs can hold credentials (OpenBao's dev mode prints `Root Token: ...`): every log the development stacks
write for a server (OpenBao, Temporal, the chaos worker: all through devstack.spawn) is created 0600, never wider
for a moment, in directories only this user can enter (0700); the root token never appears on a command line."""

from __future__ import annotations

import stat
import sys
import time
from pathlib import Path

import devstack


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def test_spawn_creates_its_log_0600_in_0700_directories(tmp_path: Path) -> None:
    log = tmp_path / "home" / "logs" / "server.log"
    proc = devstack.spawn("echo", ["sh", "-c", "echo started"], log)
    assert proc.popen.wait(10) == 0
    assert log.read_text() == "started\n"
    assert mode(log) == 0o600
    assert mode(tmp_path / "home") == 0o700 and mode(tmp_path / "home" / "logs") == 0o700


def test_spawn_replaces_a_wider_file_and_never_follows_a_planted_symlink(tmp_path: Path) -> None:
    logs = devstack.private_dir(tmp_path / "logs")
    old = logs / "old.log"
    old.write_text("earlier run\n")
    old.chmod(0o644)
    proc = devstack.spawn("echo", ["sh", "-c", "echo again"], old)
    assert proc.popen.wait(10) == 0
    assert (mode(old), old.read_text()) == (0o600, "again\n")

    elsewhere = tmp_path / "elsewhere.txt"
    elsewhere.write_text("not a log\n")
    elsewhere.chmod(0o644)
    planted = logs / "planted.log"
    planted.symlink_to(elsewhere)
    proc = devstack.spawn("echo", ["sh", "-c", "echo mine"], planted)
    assert proc.popen.wait(10) == 0
    assert not planted.is_symlink() and mode(planted) == 0o600 and planted.read_text() == "mine\n"
    assert (mode(elsewhere), elsewhere.read_text()) == (0o644, "not a log\n")


def test_private_dir_narrows_a_wider_directory(tmp_path: Path) -> None:
    wide = tmp_path / "wide"
    wide.mkdir(mode=0o755)
    wide.chmod(0o755)
    assert mode(devstack.private_dir(wide)) == 0o700


def test_openbao_root_token_reaches_only_a_private_log(tmp_path: Path) -> None:
    server = devstack.start_openbao(tmp_path / "logs")
    try:
        log = server.process.log_path
        # The credential really is in the log (dev mode prints it once set up): the file's mode is what protects it.
        printed = f"Root Token: {server.root_token}"
        deadline = time.monotonic() + 30
        while printed not in log.read_text():
            assert time.monotonic() < deadline, f"dev mode never printed its root token:\n{log.read_text()}"
            time.sleep(0.05)
        assert mode(log) == 0o600 and mode(log.parent) == 0o700
        assert server.root_token not in repr(server)
        if sys.platform.startswith("linux"):
            # Any user can read a command line (ps); the token goes through the environment, readable by us only.
            cmdline = Path(f"/proc/{server.process.popen.pid}/cmdline").read_bytes()
            assert server.root_token.encode() not in cmdline
    finally:
        server.stop()


def test_restartable_openbao_keeps_its_log_config_and_data_private(tmp_path: Path) -> None:
    server = devstack.start_openbao_server(tmp_path / "logs")
    try:
        port = server.addr.rsplit(":", 1)[1]
        data = tmp_path / "logs" / f"openbao-{port}-data"
        assert mode(data) == 0o700 and mode(server.config) == 0o600 and mode(server.log_path) == 0o600
        server.restart()
        assert mode(server.log_path) == 0o600
    finally:
        server.stop()
