"""``IntrospectionVerifier``: opaque tokens checked at the issuer (RFC 7662).

The resource server authenticates to the introspection endpoint with its own client
credentials (``client_secret_basic``, RFC 7662 §2.1 requires some authentication so the
endpoint cannot be used to scan for valid tokens). Answers are cached, keyed by the token's
SHA-256 so no token is kept in memory: an active one until ``min(exp, now + cache_ttl)``
(RFC 7662 §4: a cache trades revocation latency for load, so the time is bounded), an
inactive one for ``inactive_ttl`` only. The cache holds at most ``max_entries``, so tokens
sprayed by an attacker cannot grow it without bound.

An active answer must name this resource in ``aud`` unless ``require_audience=False``
(``checks``: audience binding is an MCP MUST, and refresh tokens introspect as active too).
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping

from oauth_server import tokens
from oauth_server.fetch import Fetcher, FetchError
from oauth_server.resource.checks import INTROSPECTION_REQUIRED, verified, why_refused
from oauth_server.resource.claims import RoleRules
from oauth_server.resource.verified import VerifiedToken, VerifierUnavailable

logger = logging.getLogger("oauth_server.resource")

#: RFC 7662 §2.2 ``token_type`` values that mean an access token used as a bearer token. A
#: refresh token is "active" too, but must never open a resource (RFC 6749 §1.5).
_BEARER_TYPES = frozenset({"bearer", "access_token", "urn:ietf:params:oauth:token-type:access_token"})


class IntrospectionVerifier:
    """Ask ``endpoint`` whether a token is active, for ``resource``, as issued by ``issuer``."""

    def __init__(
        self,
        *,
        resource: str,
        issuer: str,
        endpoint: str,
        client_id: str,
        client_secret: str,
        fetcher: Fetcher,
        rules: RoleRules | None = None,
        cache_ttl: float = 60.0,
        inactive_ttl: float = 5.0,
        max_entries: int = 10_000,
        leeway: float = 30.0,
        require_audience: bool = True,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.resource = resource
        self.issuer = issuer
        self.endpoint = endpoint
        self._credentials = (client_id, client_secret)
        self.fetcher = fetcher
        self.rules = rules or RoleRules()
        self.cache_ttl, self.inactive_ttl, self.max_entries = cache_ttl, inactive_ttl, max_entries
        self.leeway = leeway
        self.required = INTROSPECTION_REQUIRED if require_audience else frozenset()
        self.clock = clock
        self._cache: OrderedDict[str, tuple[float, VerifiedToken | None]] = OrderedDict()

    async def verify(self, token: str) -> VerifiedToken | None:
        key = tokens.digest(token)
        now = self.clock()
        cached = self._cache.get(key)
        if cached is not None and now < cached[0]:
            self._cache.move_to_end(key)
            return cached[1]
        answer = await self._introspect(token)
        record = self._judge(answer, now)
        ttl = self.inactive_ttl if record is None else self.cache_ttl
        if record is not None and record.expires_at is not None:
            ttl = min(ttl, record.expires_at - now)
        if ttl > 0:
            self._remember(key, now + ttl, record)
        return record

    async def _introspect(self, token: str) -> Mapping[str, object]:
        form = {"token": token, "token_type_hint": "access_token"}
        try:
            result = await self.fetcher.post_form(self.endpoint, form, basic_auth=self._credentials)
        except FetchError as exc:
            if getattr(exc, "status", None) in (401, 403):
                logger.error("introspection at %s refused our client credentials", self.endpoint)
            else:
                logger.warning("introspection at %s failed: %s", self.endpoint, exc)
            raise VerifierUnavailable(f"introspection at {self.issuer} is unavailable") from exc
        if not isinstance(result.body, Mapping) or not isinstance(result.body.get("active"), bool):
            logger.warning("introspection at %s answered without a boolean 'active'", self.endpoint)
            raise VerifierUnavailable(f"introspection at {self.issuer} answered nonsense")
        return result.body

    def _judge(self, answer: Mapping[str, object], now: float) -> VerifiedToken | None:
        """RFC 7662 §2.2: ``active`` must be exactly true; then the claim rules, when present."""
        if answer["active"] is not True:
            return None
        token_type = answer.get("token_type")
        if isinstance(token_type, str) and token_type.lower() not in _BEARER_TYPES:
            logger.info("introspected token refused: token_type %r", token_type)
            return None
        claims = dict(answer)
        claims.pop("active")
        reason = why_refused(claims, issuer=self.issuer, resource=self.resource, now=now,
                             leeway=self.leeway, required=self.required)
        if reason is not None:
            logger.info("introspected token refused: %s", reason)
            return None
        return verified(claims, self.issuer, self.rules)

    def _remember(self, key: str, until: float, record: VerifiedToken | None) -> None:
        self._cache[key] = (until, record)
        self._cache.move_to_end(key)
        while len(self._cache) > self.max_entries:
            self._cache.popitem(last=False)
