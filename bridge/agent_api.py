"""The agent-facing API: what the agent's own process calls, on a Unix socket that only the agent's user can use.

Routes (HTTP over the socket, JSON bodies, one request per connection):

    POST /tools/{tool}/authorize[?wait=SECONDS]   ask before running a tool (`bridge.tools.Authorizer`)

Every other method and path is 404, and every request from any other user is 403 before its route is looked at.

Why a Unix socket with peer credentials, and not loopback TCP with a bearer token:
- **No network address at all.** A socket file cannot be reached from another machine, whatever interface the
  health listener binds (the bug this replaces: tool authorization shared `0.0.0.0:8787` with the health check). A
  loopback port, by contrast, is open to every user on the VM, to every other simulated VM on a cloudsim host (they
  share one loopback), and to any URL an agent's own HTTP tool can be made to fetch (SSRF to `http://127.0.0.1:...`,
  DNS rebinding); a socket path is not a URL.
- **The kernel authenticates the caller.** `SO_PEERCRED` gives the uid of the process that connected, which it
  cannot forge; every connection from a uid other than the agent's is refused. There is no secret to mint, write to
  a file, rotate, or leak into logs, environments, child processes or crash dumps, as a bearer token could.
- **File permissions are a second lock.** The socket is mode 0600 and owned by the agent's user, in a directory
  owned by the bridge's user that nobody else may write (so nobody can put their own socket in its place).

The price: an HTTP client must be pointed at the socket (`curl --unix-socket`, `httpx.HTTPTransport(uds=...)`, or
`http.client` with a connected socket); `SO_PEERCRED` is Linux (the bridge runs on Linux VMs; elsewhere every caller
is refused); and the path holds at most 107 bytes. To serve another user than its own, the bridge must be able to
give the socket to that user (root, as on a VM). Where the socket is: `/run/lobstack/agent.sock` on a VM (the agent
runs as `lobstack-agent`); `LocalProvider.agent_socket(agent_id)` for the local provider and `agent_socket` in
cloudsim's `/_sim/state` (the simulator's user, as is the agent's process there).
"""

from __future__ import annotations

import json
import logging
import os
import pwd
import re
import socket
import socketserver
import stat
import struct
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs

from bridge.server import MAX_BODY_BYTES, JSONHandler
from bridge.tools import Authorizer, refused
from contracts.bootstrap import MAX_SOCKET_PATH_BYTES

_AUTHORIZE = re.compile(r"^/tools/([^/]+)/authorize$")
_PEERCRED = struct.Struct("=iII")  # struct ucred: pid_t pid, uid_t uid, gid_t gid

__all__ = ["AgentAPIServer", "AgentAPIUnavailable", "Peer", "peer_of", "resolve_user"]

log = logging.getLogger(__name__)


class AgentAPIUnavailable(Exception):
    """The agent API cannot be served as configured; the message names the field and what is wrong."""


@dataclass(frozen=True)
class Peer:
    pid: int
    uid: int
    gid: int


def peer_of(conn: socket.socket) -> Peer | None:
    """The credentials the kernel recorded for the process that connected, or None where it cannot say."""
    option = getattr(socket, "SO_PEERCRED", None)
    if option is None:
        return None
    try:
        return Peer(*_PEERCRED.unpack(conn.getsockopt(socket.SOL_SOCKET, option, _PEERCRED.size)))
    except (OSError, struct.error):
        return None


def resolve_user(user: str) -> int:
    """The uid allowed to call: a user name, a numeric uid, or empty for the bridge's own user."""
    if not user:
        return os.geteuid()
    if user.isdigit():
        return int(user)
    try:
        return pwd.getpwnam(user).pw_uid
    except KeyError:
        raise AgentAPIUnavailable(f"agent_user: no user {user!r} on this machine") from None


def _prepare(path: Path) -> None:
    """Refuse a path that would let anyone else reach or replace the socket; remove our own stale socket."""
    size = len(os.fsencode(path))
    if size > MAX_SOCKET_PATH_BYTES:
        raise AgentAPIUnavailable(
            f"agent_socket: {path} is {size} bytes; a Unix socket path holds at most {MAX_SOCKET_PATH_BYTES}"
        )
    directory = path.parent
    directory.mkdir(mode=0o755, parents=True, exist_ok=True)
    found = os.lstat(directory)
    if not stat.S_ISDIR(found.st_mode) or found.st_uid != os.geteuid() or found.st_mode & 0o022:
        raise AgentAPIUnavailable(
            f"agent_socket: {directory} must be a directory owned by the bridge's user that no one else can write"
        )
    try:
        existing = os.lstat(path)
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(existing.st_mode):
        raise AgentAPIUnavailable(f"agent_socket: {path} exists and is not a socket")
    path.unlink()  # a socket left by an earlier run of this bridge, in a directory only we can write


class AgentAPIServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    """The agent API on a Unix socket: 0600, owned by the agent's user, and every caller's uid checked."""

    daemon_threads = True

    def __init__(
        self,
        path: str | Path,
        *,
        agent_uid: int,
        authorizer: Authorizer,
        on_request: Callable[[], None] = lambda: None,
    ) -> None:
        self.path = Path(path)
        self.agent_uid = agent_uid
        self.authorizer = authorizer
        # Told of every request from the agent's user: the agent is active (its idle timeout, bridge.health).
        self.on_request = on_request
        _prepare(self.path)
        super().__init__(str(self.path), _AgentHandler, bind_and_activate=False)
        try:
            self.server_bind()
            # Before listen(): nobody can connect until the socket has its final owner and mode.
            os.chmod(self.path, 0o600)
            if agent_uid != os.geteuid():
                try:
                    os.chown(self.path, agent_uid, -1)
                except PermissionError:
                    raise AgentAPIUnavailable(
                        f"agent_user: the bridge cannot give {self.path} to uid {agent_uid} (it must run as root "
                        "to serve another user)"
                    ) from None
            self._inode = os.lstat(self.path).st_ino
            self.server_activate()
        except BaseException:
            self.server_close()
            self.path.unlink(missing_ok=True)
            raise

    def server_close(self) -> None:
        super().server_close()
        # Remove the socket file only if it is still the one we bound (a later bridge may have replaced it).
        try:
            if os.lstat(self.path).st_ino == getattr(self, "_inode", None):
                self.path.unlink()
        except FileNotFoundError:
            pass

    def allows(self, peer: Peer | None) -> bool:
        return peer is not None and peer.uid == self.agent_uid


class _AgentHandler(JSONHandler):
    server: AgentAPIServer
    peer: Peer | None = None

    def setup(self) -> None:
        super().setup()
        self.peer = peer_of(self.connection)

    def address_string(self) -> str:
        # A Unix socket's client has no address; say who it is instead.
        peer = self.peer
        return f"pid {peer.pid} uid {peer.uid}" if peer else "unknown peer"

    def parse_request(self) -> bool:
        """Authenticate before any route is looked at: only the agent's user gets past here."""
        if not super().parse_request():
            return False
        if self.server.allows(self.peer):
            self.server.on_request()
            return True
        log.warning("agent API refused %s %s from %s", self.command, self.path[:100], self.address_string())
        self.discard_body()
        self.send_json(*refused("caller is not the agent's user"))
        return False

    def do_POST(self) -> None:
        path, _, query = self.path.partition("?")
        match = _AUTHORIZE.fullmatch(path)
        if match is None:
            self.not_found()
            return
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if not 0 <= length <= MAX_BODY_BYTES:
            self.send_json(*refused(f"body: must be a JSON object of at most {MAX_BODY_BYTES} bytes", 400))
            return
        try:
            body = json.loads(self.rfile.read(length) or b"{}")
        except ValueError:
            body = None
        if not isinstance(body, dict):
            self.send_json(*refused("body: must be a JSON object", 400))
            return
        wait = parse_qs(query).get("wait", [""])[0]
        try:
            wait_s = float(wait) if wait else None
        except ValueError:
            self.send_json(*refused("wait: must be a number of seconds", 400))
            return
        self.send_json(*self.server.authorizer.authorize(match.group(1), body, wait_s))
