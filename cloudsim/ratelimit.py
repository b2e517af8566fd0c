"""Each provider's rate limit, with its real headers, per API token.

- Hetzner: 3600 requests/hour per project; "the number of remaining requests increases gradually" (one per second),
  so a token bucket. Headers RateLimit-Limit, RateLimit-Remaining, RateLimit-Reset (unix time of full recovery).
- DigitalOcean: 5000/hour AND 250/minute; "each request has its own timer" (sliding window). Headers ratelimit-limit
  (hourly), ratelimit-remaining, ratelimit-reset ("the time when the oldest request will expire").
- Vultr: 30 requests/second per IP address (not per API key); no rate-limit header at all, not even Retry-After on
  a 429, so clients guess the wait.

Windows and limits are configurable (POST /_sim/config) so a time-compressed bench can shrink or stretch them.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

DEFAULT_LIMITS: dict[str, dict[str, Any]] = {
    "hetzner": {"enabled": True, "limit": 3600, "window_s": 3600.0},
    "digitalocean": {"enabled": True, "limit": 5000, "window_s": 3600.0, "minute_limit": 250, "minute_window_s": 60.0},
    "vultr": {"enabled": True, "limit": 30, "window_s": 1.0},
}


@dataclass
class Decision:
    allowed: bool
    headers: dict[str, str]
    # Seconds until a request would be allowed again (only meaningful when refused).
    retry_after_s: float = 0.0


@dataclass
class _Bucket:
    remaining: float
    last: float


@dataclass
class _Windows:
    long: deque[float] = field(default_factory=deque)
    short: deque[float] = field(default_factory=deque)


class RateLimiter:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.config: dict[str, dict[str, Any]] = {p: dict(c) for p, c in DEFAULT_LIMITS.items()}
        self._buckets: dict[str, _Bucket] = {}
        self._windows: dict[tuple[str, str], _Windows] = {}

    def configure(self, provider: str, values: dict[str, Any]) -> None:
        if provider not in self.config:
            raise ValueError(f"rate_limits: unknown provider {provider!r}")
        allowed = set(DEFAULT_LIMITS[provider])
        unknown = set(values) - allowed
        if unknown:
            raise ValueError(f"rate_limits.{provider}: unknown field(s) {sorted(unknown)}; allowed {sorted(allowed)}")
        with self._lock:
            self.config[provider].update(values)
            self._reset_provider(provider)

    def _reset_provider(self, provider: str) -> None:
        self._buckets = {k: v for k, v in self._buckets.items() if not k.startswith(f"{provider}\0")}
        self._windows = {k: v for k, v in self._windows.items() if k[0] != provider}

    def reset(self) -> None:
        with self._lock:
            self._buckets.clear()
            self._windows.clear()

    def check(self, provider: str, token: str, address: str = "") -> Decision:
        """Count one request with API key `token` from client `address` (Vultr limits per address)."""
        with self._lock:
            cfg = self.config[provider]
            now = time.time()
            if provider == "hetzner":
                return self._hetzner(cfg, token, now)
            return self._sliding(provider, cfg, address if provider == "vultr" else token, now)

    def storm_headers(self, provider: str, retry_after_s: float) -> dict[str, str]:
        """Headers of a 429 that says: come back in `retry_after_s` seconds."""
        reset = str(math.ceil(time.time() + retry_after_s))
        limit = str(self.config[provider]["limit"])
        if provider == "hetzner":
            return {"RateLimit-Limit": limit, "RateLimit-Remaining": "0", "RateLimit-Reset": reset}
        if provider == "digitalocean":
            return {"ratelimit-limit": limit, "ratelimit-remaining": "0", "ratelimit-reset": reset}
        return {}  # Vultr: no header says when

    def _hetzner(self, cfg: dict[str, Any], token: str, now: float) -> Decision:
        limit = int(cfg["limit"])
        per_s = limit / float(cfg["window_s"])
        bucket = self._buckets.setdefault(f"hetzner\0{token}", _Bucket(float(limit), now))
        bucket.remaining = min(float(limit), bucket.remaining + (now - bucket.last) * per_s)
        bucket.last = now
        allowed = not cfg["enabled"] or bucket.remaining >= 1.0
        if allowed and cfg["enabled"]:
            bucket.remaining -= 1.0
        reset = math.ceil(now + (limit - bucket.remaining) / per_s)
        headers = {
            "RateLimit-Limit": str(limit),
            "RateLimit-Remaining": str(math.floor(bucket.remaining)),
            "RateLimit-Reset": str(reset),
        }
        return Decision(allowed, headers, 0.0 if allowed else (1.0 - bucket.remaining) / per_s)

    def _sliding(self, provider: str, cfg: dict[str, Any], key: str, now: float) -> Decision:
        windows = self._windows.setdefault((provider, key), _Windows())
        limit, window = int(cfg["limit"]), float(cfg["window_s"])
        short_limit, short_window = int(cfg.get("minute_limit", 0)), float(cfg.get("minute_window_s", 0.0))
        while windows.long and windows.long[0] <= now - window:
            windows.long.popleft()
        while windows.short and windows.short[0] <= now - short_window:
            windows.short.popleft()
        waits = []
        if len(windows.long) >= limit:
            waits.append(windows.long[0] + window - now)
        if short_limit and len(windows.short) >= short_limit:
            waits.append(windows.short[0] + short_window - now)
        allowed = not cfg["enabled"] or not waits
        if allowed:
            windows.long.append(now)
            if short_limit:
                windows.short.append(now)
        retry_after = max(waits, default=0.0) if not allowed else 0.0
        if provider == "digitalocean":
            reset = now + retry_after if not allowed else (windows.long[0] + window if windows.long else now)
            headers = {
                "ratelimit-limit": str(limit),
                "ratelimit-remaining": str(max(0, limit - len(windows.long))),
                "ratelimit-reset": str(math.ceil(reset)),
            }
        else:
            headers = {}
        return Decision(allowed, headers, retry_after)
