"""One issuer's signing keys (RFC 7517 JWK Set), fetched from its ``jwks_uri`` and cached.

Keys are kept as long as the JWKS response's ``Cache-Control`` says, within bounds (a
``no-store`` answer must not turn every request into a fetch; a year-long ``max-age`` must not
pin a retired key). A token whose ``kid`` is unknown may mean the issuer rotated its keys
(RFC 7517 §4.5, OpenID Connect Core §10.1.1), so the set is fetched again — but at most once per
``refetch_interval``: tokens with invented ``kid`` values must not make us hammer the issuer.
Concurrent requests share one fetch, and a failed fetch is remembered for ``failure_cooldown``
so a down issuer is not asked again by every waiting request.

A failure is ``VerifierUnavailable`` (answered 503), never an empty key set: an unreachable
issuer must not look like a bad token, and a bad token must never pass because a fetch failed.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable, Mapping
from typing import Any

import jwt

from oauth_server.fetch import Fetcher, FetchError, cache_lifetime
from oauth_server.resource.verified import VerifierUnavailable

logger = logging.getLogger("oauth_server.resource")

#: RFC 7518 §3.1 / RFC 8037 §3.1: the key type (and curve) each signature algorithm needs.
_KEY_TYPES: Mapping[str, tuple[str, tuple[str, ...] | None]] = {
    **{alg: ("RSA", None) for alg in ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512")},
    "ES256": ("EC", ("P-256",)),
    "ES384": ("EC", ("P-384",)),
    "ES512": ("EC", ("P-521",)),
    "EdDSA": ("OKP", ("Ed25519", "Ed448")),
}


def _fits(jwk: Mapping[str, Any], alg: str) -> bool:
    """RFC 7517 §4.2–4.4: a key marked for another use or another algorithm is not a candidate,
    and the key type must be the algorithm's (an RSA key never verifies an ES256 token)."""
    wanted = _KEY_TYPES.get(alg)
    if wanted is None or jwk.get("kty") != wanted[0]:
        return False
    if jwk.get("use", "sig") != "sig" or jwk.get("alg", alg) != alg:
        return False
    return wanted[1] is None or jwk.get("crv") in wanted[1]


def parse_jwks(document: object) -> list[dict[str, Any]]:
    """The asymmetric signing keys of a JWK Set. Symmetric (``oct``) keys are dropped: a key
    published for anyone to read can never verify an HMAC (RFC 8725 §3.1, key confusion)."""
    if not isinstance(document, Mapping) or not isinstance(document.get("keys"), list):
        raise ValueError("not a JWK Set (RFC 7517 §5: an object with a 'keys' array)")
    keys = [dict(key) for key in document["keys"] if isinstance(key, Mapping)]
    return [key for key in keys if key.get("kty") in ("RSA", "EC", "OKP") and isinstance(key.get("kid", ""), str)]


class KeySet:
    """The JWK Set at ``jwks_uri``, cached; ``keys_for(kid, alg)`` gives the candidate keys."""

    def __init__(
        self,
        fetcher: Fetcher,
        jwks_uri: str,
        *,
        refetch_interval: float = 60.0,
        failure_cooldown: float = 5.0,
        min_lifetime: float = 60.0,
        max_lifetime: float = 86_400.0,
        default_lifetime: float = 600.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.fetcher = fetcher
        self.jwks_uri = jwks_uri
        self.refetch_interval = refetch_interval
        self.failure_cooldown = failure_cooldown
        self._lifetimes = (min_lifetime, max_lifetime, default_lifetime)
        self.clock = clock
        self._keys: list[dict[str, Any]] | None = None
        self._prepared: dict[tuple[int, str], jwt.PyJWK | None] = {}
        self._expires_at = -math.inf
        self._last_attempt = -math.inf
        self._failure: str | None = None
        self._lock = asyncio.Lock()

    async def keys_for(self, kid: str | None, alg: str) -> list[jwt.PyJWK]:
        """Keys that may have signed a token with this ``kid`` (any fitting key when the token
        names none) and ``alg``. Empty: no such key even after the one allowed refetch."""
        now = self.clock()
        if self._keys is None or now >= self._expires_at:
            await self._fetch(now)
        found = self._select(kid, alg)
        if found:
            return found
        if now - self._last_attempt >= self.refetch_interval:
            logger.info("unknown key %r for %s: fetching the JWK Set again", kid, self.jwks_uri)
            await self._fetch(now)
            found = self._select(kid, alg)
        elif self._failure is not None:
            raise VerifierUnavailable(f"JWK Set {self.jwks_uri} is unavailable")  # a new key may be there
        return found

    def _select(self, kid: str | None, alg: str) -> list[jwt.PyJWK]:
        found = []
        for index, jwk in enumerate(self._keys or ()):
            if (kid is None or jwk.get("kid") == kid) and _fits(jwk, alg):
                key = self._prepare(index, jwk, alg)
                if key is not None:
                    found.append(key)
        return found

    def _prepare(self, index: int, jwk: dict[str, Any], alg: str) -> jwt.PyJWK | None:
        """The key bound to ``alg`` (pyjwt then verifies with that algorithm only), built once."""
        if (index, alg) not in self._prepared:
            try:
                self._prepared[index, alg] = jwt.PyJWK(jwk, algorithm=alg)
            except jwt.PyJWTError as exc:
                logger.warning("unusable key %r in %s: %s", jwk.get("kid"), self.jwks_uri, exc)
                self._prepared[index, alg] = None
        return self._prepared[index, alg]

    async def _fetch(self, requested_at: float) -> None:
        async with self._lock:
            if self._last_attempt >= requested_at or (
                self._failure is not None and requested_at < self._last_attempt + self.failure_cooldown
            ):
                # Another request fetched while this one waited, or the last try failed just now:
                # share that outcome instead of asking the issuer again.
                if self._failure is not None:
                    raise VerifierUnavailable(f"JWK Set {self.jwks_uri} is unavailable")
                return
            self._last_attempt = self.clock()
            try:
                result = await self.fetcher.get_json(self.jwks_uri)
                keys = parse_jwks(result.body)
            except (FetchError, ValueError) as exc:
                self._failure = str(exc)
                logger.warning("JWK Set %s unavailable: %s", self.jwks_uri, exc)
                raise VerifierUnavailable(f"JWK Set {self.jwks_uri} is unavailable") from exc
            floor, ceiling, default = self._lifetimes
            self._keys, self._prepared, self._failure = keys, {}, None
            self._expires_at = self._last_attempt + cache_lifetime(
                result.headers, floor=floor, ceiling=ceiling, default=default)
