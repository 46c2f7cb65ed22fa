"""Rate limits for register, authorize, consent, connected apps, token and revoke (RFC 9700 §4.x, brute force).

Built on ``limits``, the engine under slowapi: slowapi's decorators need ``app.state`` and an
app-level exception handler, which a router cannot install, so the router calls the engine
itself. Limits are per client IP, and at the token endpoint also per client_id. Storage is in
memory by default; ``storage_uri="redis://host:6379"`` makes several processes share limits.
If the storage is unreachable the request is let through (limits are defence in depth; an
outage of Redis must not take the authorization server down) and a warning is logged.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field

from limits import RateLimitItem, parse
from limits.aio.strategies import MovingWindowRateLimiter
from limits.storage import storage_from_string

from oauth_server.errors import OAuthError

logger = logging.getLogger("oauth_server")

DEFAULT_LIMITS = {
    "register": "30/minute",
    "authorize": "60/minute",
    "consent": "30/minute",      # the example's login form: slows password guessing
    "connected_apps": "30/minute",  # its POSTs: revocations and sign-ins
    "token": "300/minute",
    "token_client": "120/minute",
    "revoke": "120/minute",
    "introspect": "600/minute",  # resource servers introspect on every uncached request
    # RFC 8628: requests for device codes, and typed user codes (§5.1 brute force: SECURITY.md
    # works out the odds) per IP and per browser session or signed-in user.
    "device_authorization": "60/minute",
    "device_verify": "20/minute",
    "device_verify_session": "10/minute",
}


class RateLimited(OAuthError):
    """429 with ``Retry-After``; the body is an OAuth error like every other failure."""

    error = "temporarily_unavailable"
    status_code = 429

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"too many requests; retry after {retry_after} s")
        self.retry_after = retry_after


@dataclass
class RateLimits:
    """Per-endpoint limits such as ``{"token": "300/minute"}``; ``enabled=False`` turns all off."""

    limits: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_LIMITS))
    storage_uri: str = "memory://"
    enabled: bool = True
    #: Namespace of the keys in a shared storage (Redis), so several apps can share one server.
    key_prefix: str = "oauth_server"

    def __post_init__(self) -> None:
        self._items: dict[str, RateLimitItem] = {name: parse(rule) for name, rule in self.limits.items()}
        uri = self.storage_uri if self.storage_uri.startswith("async+") else f"async+{self.storage_uri}"
        options = {"implementation": "redispy", "key_prefix": self.key_prefix} if "redis" in uri else {}
        self._limiter = MovingWindowRateLimiter(storage_from_string(uri, **options))

    @classmethod
    def disabled(cls) -> RateLimits:
        return cls(enabled=False)

    async def aclose(self) -> None:
        """Close the storage's connections (a Redis client's pool); call it at the app's shutdown.
        The memory storage has none."""
        client = getattr(getattr(self._limiter.storage, "bridge", None), "storage", None)
        close = getattr(client, "aclose", None)
        if close is not None:
            await close()

    async def check(self, name: str, key: str) -> None:
        """Raise ``RateLimited`` if limit ``name`` is used up for ``key``, without counting this
        request: for limits that count only failures (``hit`` after each failed sign-in)."""
        await self._ask(name, key, spend=False)

    async def hit(self, name: str, key: str) -> None:
        """Count one request for ``key`` under limit ``name``; raise ``RateLimited`` past it."""
        await self._ask(name, key, spend=True)

    async def _ask(self, name: str, key: str, *, spend: bool) -> None:
        item = self._items.get(name)
        if not self.enabled or item is None:
            return
        try:
            allowed = await (self._limiter.hit if spend else self._limiter.test)(item, name, key)
            if allowed:
                return
            stats = await self._limiter.get_window_stats(item, name, key)
        except Exception as exc:
            logger.warning("rate limit storage unavailable (%s); request allowed", exc.__class__.__name__)
            return
        raise RateLimited(max(1, math.ceil(stats.reset_time - time.time())))
