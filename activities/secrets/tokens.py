"""Find every live token an agent was issued, so destroy can revoke them.

Deleting an AppRole role (or its policy) does not revoke the tokens it issued, and Vault has no "tokens of a role"
index. The tokens of an agent are:
- login tokens: `meta.role_name == agent-<id>` (AppRole sets it), and our SecretID metadata adds `agent_id`;
- wrapping tokens of a not yet unwrapped SecretID: no metadata, but `path` is the creation path
  `auth/<approle>/role/agent-<id>/secret-id` (lookup-accessor shows it);
- anything else carrying the agent's policy.

Cost: one LIST of auth/token/accessors (sudo) per scan, then one lookup-accessor per accessor this process has not
seen yet. A token's metadata, path and policies never change, so each accessor's owner is cached for the life of the
worker and a destroy costs the LIST plus the lookups of tokens issued since the previous scan, instead of a lookup of
every token in the cluster. Recording accessors at issue time would miss login tokens, which only the VM sees.

Never look up a token that may still be being created. OpenBao stores a new token's entry and accessor index (so the
LIST shows it) before it registers the token's lease, and its token lookup revokes "any kind of expiring token with no
lease" on the spot: a lookup-accessor in that window answers 403 "permission denied" and kills the token, which its
creating request still hands out. That is how a destroy of one agent killed another agent's bootstrap credential being
issued ("wrapping token is not valid or does not exist" at the bridge's first lookup) or its login token being created
(403 at the bridge's first read), under load (tests/activities/secrets/test_token_race.py). So an accessor is looked
up only once SETTLE_S have passed since this finder first listed it; a scan that finds younger ones waits for them.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import hvac
import hvac.exceptions as hv

from activities.secrets.errors import vault_errors
from activities.secrets.names import AgentNames
from contracts.identifiers import agent_of

_ACCESSORS_PATH = "auth/token/accessors"
_MAX_CACHE = 200_000
# How long after first listing an accessor it may be looked up: four times the longest window measured between a
# token's listing and its lease (0.25 s, on a loaded 2-core machine). Every scan that meets a younger token waits
# this long at most, which destroy and verification pay in wall time: longer would buy nothing measured.
SETTLE_S = 1.0


def owner_of(lookup: dict[str, Any], approle_mount: str) -> str | None:
    """The agent id a token belongs to, from its lookup-accessor data; None for anything not ours."""
    meta = lookup.get("meta") or {}
    role = str(meta.get("role_name") or "")
    if lookup.get("path") == f"auth/{approle_mount}/login" and (agent_id := agent_of(role)) is not None:
        return agent_id
    path = str(lookup.get("path") or "")
    prefix, suffix = f"auth/{approle_mount}/role/", "/secret-id"
    if path.startswith(prefix) and path.endswith(suffix) and (agent_id := agent_of(path[len(prefix) : -len(suffix)])):
        return agent_id
    for policy in lookup.get("policies") or ():
        if isinstance(policy, str) and (agent_id := agent_of(policy)) is not None:
            return agent_id
    return None


def _accessor_outlived_token(exc: hv.Forbidden) -> bool:
    """Vault answers a lookup-accessor whose token entry is already gone with 403 "bad token", not 400: the accessor
    is removed after the token during a revocation, and a revocation cut short (a restart) can leave it dangling until
    `auth/token/tidy`. Such an accessor names no usable token. A real permission problem says "permission denied"."""
    return any("bad token" in str(error) for error in exc.errors or ())


class TokenFinder:
    """Maps live accessors to their owners (agent ids, or what `owner` says), remembering what it already looked up.
    Thread-safe."""

    def __init__(
        self,
        client: hvac.Client,
        approle_mount: str,
        *,
        owner: Callable[[dict[str, Any], str], str | None] = owner_of,
        settle_s: float = SETTLE_S,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._client = client
        self._approle_mount = approle_mount
        # Who a token belongs to, from its lookup-accessor data: an agent id by default (a pool's finder: its slot).
        self._owner = owner
        self._settle_s = settle_s
        self._clock = clock
        self._sleep = sleep
        self._owners: dict[str, str | None] = {}
        self._first_seen: dict[str, float] = {}
        self._lock = threading.Lock()

    def accessors_of(self, names: AgentNames) -> list[str]:
        """Accessors of the agent's live tokens (login and wrapping tokens)."""
        return self.accessors_owned_by(names.agent_id)

    def accessors_owned_by(self, owner: str) -> list[str]:
        """Accessors of the live tokens whose owner (as this finder's `owner` function says) is `owner`."""
        live = self._list()
        owners = self._owners_of(live)
        return [a for a in live if a in owners and owners[a] == owner]

    def _list(self) -> list[str]:
        """The live accessors; notes when each was first listed and forgets what is gone, so the caches only ever
        hold the cluster's live tokens."""
        with vault_errors("list", _ACCESSORS_PATH):
            resp = self._client.auth.token.list_accessors()
        live = list((resp.get("data") or {}).get("keys") or [])
        live_set = set(live)
        now = self._clock()
        with self._lock:
            self._owners = {a: o for a, o in self._owners.items() if a in live_set}
            self._first_seen = {a: self._first_seen.get(a, now) for a in live}
        return live

    def _owners_of(self, live: list[str]) -> dict[str, str | None]:
        """Owner of each accessor of `live` still live: cached, or looked up once it has settled."""
        with self._lock:
            known = {a: self._owners[a] for a in live if a in self._owners}
            unknown = [a for a in live if a not in known]
            first_seen = {a: self._first_seen.get(a) for a in unknown}
        now = self._clock()
        # An accessor not noted (forgotten by a concurrent, older LIST) counts as just listed: the safe side.
        wait = max((self._settle_s - (now - (now if t is None else t)) for t in first_seen.values()), default=0.0)
        if wait > 0:
            self._sleep(wait)
            still = set(self._list())  # tokens gone meanwhile need no lookup and have no owner
            known = {a: o for a, o in known.items() if a in still}
            unknown = [a for a in unknown if a in still]
        found = {accessor: self._lookup_owner(accessor) for accessor in unknown}
        with self._lock:
            if len(self._owners) + len(found) <= _MAX_CACHE:
                self._owners.update(found)
        return {**known, **found}

    def _lookup_owner(self, accessor: str) -> str | None:
        with vault_errors("lookup-accessor", "auth/token/lookup-accessor"):
            try:
                resp = self._client.auth.token.lookup_accessor(accessor)
            except (hv.InvalidRequest, hv.InvalidPath):
                return None  # expired or revoked between the LIST and the lookup: gone, and nobody's
            except hv.Forbidden as exc:
                if not (_accessor_outlived_token(exc) or self._gone(accessor)):
                    raise
                return None
        return self._owner(resp.get("data") or {}, self._approle_mount)

    def _gone(self, accessor: str) -> bool:
        """After a 403 "permission denied": OpenBao answers that, too, for a token it is revoking right then (its own
        revocation, or a lookup finding its lease already gone); asked again, it then says the accessor is invalid.
        A real permission problem answers 403 again."""
        try:
            self._client.auth.token.lookup_accessor(accessor)
        except (hv.InvalidRequest, hv.InvalidPath):
            return True
        except hv.Forbidden:
            return False
        return False

    def revoke(self, accessor: str) -> None:
        # An accessor revoked meanwhile answers 200 with a warning: nothing to do.
        with vault_errors("revoke-accessor", "auth/token/revoke-accessor"):
            self._client.auth.token.revoke_accessor(accessor)
        with self._lock:
            self._owners.pop(accessor, None)

    def owners(self) -> dict[str, int]:
        """Live tokens per agent id, over every token in the cluster (the orphan sweep's view of tokens)."""
        counts: dict[str, int] = {}
        for owner in self._owners_of(self._list()).values():
            if owner is not None:
                counts[owner] = counts.get(owner, 0) + 1
        return counts
