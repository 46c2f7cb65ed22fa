"""``private_key_jwt`` client authentication: JWT client assertions (RFC 7523 §2.2 and §3,
OpenID Connect Core 1.0 §9), checked against the client's registered public keys.

The client signs a short-lived JWT with its private key; we hold only public keys, inline
(``jwks``) or published at its ``jwks_uri``, which is a URL a stranger chose, so it is fetched
through the guarded ``Fetcher`` (no private or loopback addresses, no redirects, size caps).
Every refusal is ``invalid_client`` (RFC 7523 §3.2) with a description that names the rule and
never echoes the assertion; the precise cause goes to the log.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import jwt

from oauth_server.errors import InvalidClient, InvalidClientMetadata
from oauth_server.fetch import Fetcher, FetchError, FetchPolicy
from oauth_server.http_cache import cache_lifetime
from oauth_server.model.base import MAX_JTI_LENGTH, OAuthServerModel
from oauth_server.records import Client

logger = logging.getLogger("oauth_server")

#: RFC 7523 §2.2: the ``client_assertion_type`` of a JWT client assertion.
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
#: Asymmetric JWS algorithms only (RFC 7518 §3): ``none`` proves nothing, and an HMAC key
#: would be the client's public key, which anyone can read (the classic RS/HS confusion).
SIGNING_ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA")
_KEY_TYPES = ("RSA", "EC", "OKP")
#: RFC 7518 §6.3.2 / RFC 8037 §2: members that exist only in private keys (``k``: symmetric).
_PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})
#: RFC 7523 §3 item 4 lets the server bound ``exp``; OIDC clients use a few minutes.
MAX_LIFETIME = 300
#: Clock skew allowed between the client and us (RFC 7519 §4.1.4 "some small leeway").
LEEWAY = 30
MAX_ASSERTION_LENGTH = 8192
MAX_KEYS = 10
#: Cache bounds of a fetched JWKS (RFC 9111 through ``cache_lifetime``) and the minimum time
#: between two refetches when an assertion names an unknown ``kid`` (a rotated key).
JWKS_MIN_CACHE, JWKS_MAX_CACHE, JWKS_DEFAULT_CACHE = 60.0, 86_400.0, 3600.0
UNKNOWN_KID_REFETCH = 60.0
JWKS_MAX_BYTES = 32 * 1024


def validate_jwks(value: Any) -> str:
    """A registered ``jwks`` (RFC 7591 §2) as canonical JSON text, or ``InvalidClientMetadata``.

    Public asymmetric signing keys only: a JWK with private members means the client has leaked
    its private key to us (and to every log of the request), and a symmetric ``oct`` key cannot
    authenticate anyone whose key the server also holds.
    """
    keys = value.get("keys") if isinstance(value, Mapping) else None
    if not isinstance(keys, list) or not 1 <= len(keys) <= MAX_KEYS:
        raise InvalidClientMetadata(f"jwks must be a JWK Set with 1 to {MAX_KEYS} keys")
    for jwk in keys:
        if not isinstance(jwk, Mapping) or jwk.get("kty") not in _KEY_TYPES:
            raise InvalidClientMetadata("jwks keys must be RSA, EC or OKP public keys")
        if _PRIVATE_MEMBERS & set(jwk):
            raise InvalidClientMetadata("jwks must hold public keys only (a private key member was sent)")
        if "alg" in jwk and jwk["alg"] not in SIGNING_ALGORITHMS:
            raise InvalidClientMetadata("a jwks key names an unsupported alg")
        if _public_key(dict(jwk)) is None:
            raise InvalidClientMetadata("a jwks key cannot be read as a public signing key")
    return json.dumps({"keys": keys}, separators=(",", ":"))


def _public_key(jwk: dict[str, Any], alg: str | None = None) -> jwt.PyJWK | None:
    try:
        # Without an alg, PyJWT infers it from kty and crv (RS256, ES256/384/512, EdDSA).
        key = jwt.PyJWK(jwk, algorithm=alg or jwk.get("alg"))
    except (jwt.PyJWKError, jwt.InvalidKeyError, ValueError, TypeError, KeyError):
        return None
    size = getattr(key.key, "key_size", None)
    if jwk.get("kty") == "RSA" and (size is None or size < 2048):  # RFC 7518 §3.3
        return None
    return key


def unverified_client_id(assertion: str) -> str:
    """The client an assertion claims to be (``sub``, RFC 7523 §3 item 2), before any check:
    only to look the client up. ``verify`` then proves it."""
    if len(assertion) > MAX_ASSERTION_LENGTH:
        raise InvalidClient("client assertion is too long")
    try:
        claims = jwt.decode(assertion, options={"verify_signature": False})
    except jwt.PyJWTError:
        raise InvalidClient("client assertion is not a valid JWT") from None
    subject = claims.get("sub")
    if not isinstance(subject, str) or not subject:
        raise InvalidClient("client assertion has no sub")
    return subject


@dataclass(slots=True)
class _CachedKeys:
    jwks_uri: str
    keys: list[dict[str, Any]]
    fresh_until: float
    fetched_at: float


class ClientKeys:
    """The public keys of ``private_key_jwt`` clients: inline, or fetched and cached per client.

    A fetched set is kept for its Cache-Control lifetime within [1 min, 1 day]; an assertion
    whose ``kid`` is not in it refetches at once, but at most once a minute per client, so a
    stream of made-up ``kid`` values cannot turn this server into a request cannon.
    """

    def __init__(self, fetcher: Fetcher | None = None, *, allow_loopback: bool = False,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.fetcher = fetcher or Fetcher(FetchPolicy(allow_loopback=allow_loopback, max_bytes=JWKS_MAX_BYTES))
        self._clock = clock
        self._cache: dict[str, _CachedKeys] = {}

    async def keys_for(self, client: Client, kid: str | None) -> list[dict[str, Any]]:
        if client.jwks is not None:
            return list(json.loads(client.jwks)["keys"])
        if client.jwks_uri is None:
            raise InvalidClient("the client has no registered keys")
        now = self._clock()
        cached = self._cache.get(client.client_id)
        if cached is not None and cached.jwks_uri == client.jwks_uri:
            known = kid is None or any(k.get("kid") == kid for k in cached.keys)
            if now < cached.fresh_until and (known or now - cached.fetched_at < UNKNOWN_KID_REFETCH):
                return cached.keys
        return await self._fetch(client.client_id, client.jwks_uri, now)

    async def _fetch(self, client_id: str, uri: str, now: float) -> list[dict[str, Any]]:
        try:
            result = await self.fetcher.get_json(uri, max_bytes=JWKS_MAX_BYTES)
            keys = json.loads(validate_jwks(result.body))["keys"]
        except (FetchError, InvalidClientMetadata) as exc:
            logger.warning("jwks_uri of client %s unusable: %s", client_id, exc)
            raise InvalidClient("the client's jwks_uri could not be used") from None
        lifetime = cache_lifetime(result.headers, floor=JWKS_MIN_CACHE, ceiling=JWKS_MAX_CACHE,
                                  default=JWKS_DEFAULT_CACHE)
        if len(self._cache) > 10_000:  # bounded: forget everything rather than grow forever
            self._cache.clear()
        self._cache[client_id] = _CachedKeys(uri, keys, now + lifetime, now)
        return list(keys)


async def verify(model: OAuthServerModel, keys: ClientKeys, client: Client, assertion: str,
                 audiences: tuple[str, ...], now: int) -> None:
    """Check a client assertion of ``client``; raise ``InvalidClient`` unless every rule holds.

    RFC 7523 §3: ``iss`` and ``sub`` are the client_id (items 1-2, OIDC Core §9), ``aud``
    identifies this server: its token endpoint URL, its issuer, or the endpoint receiving the
    assertion (item 3, "the token endpoint URL of the authorization server MAY be used"),
    ``exp`` is required (item 4) and here at most ``MAX_LIFETIME`` ahead, ``nbf``/``iat`` are
    not in the future (items 5-6), the signature is valid (item 8), and the ``jti`` is single
    use until ``exp`` (item 7), across processes through ``consume_assertion_jti``.
    """
    if len(assertion) > MAX_ASSERTION_LENGTH:
        raise InvalidClient("client assertion is too long")
    try:
        header = jwt.get_unverified_header(assertion)
    except jwt.PyJWTError:
        raise InvalidClient("client assertion is not a valid JWT") from None
    alg = header.get("alg")
    if alg not in SIGNING_ALGORITHMS:
        raise InvalidClient("client assertion must be signed with an asymmetric algorithm")
    if client.token_endpoint_auth_signing_alg and alg != client.token_endpoint_auth_signing_alg:
        raise InvalidClient("client assertion uses another alg than the registered one")
    kid = header.get("kid") if isinstance(header.get("kid"), str) else None
    candidates = [k for k in await keys.keys_for(client, kid)
                  if (kid is None or k.get("kid") == kid) and k.get("alg", alg) == alg]
    claims = _decode(assertion, str(alg), candidates, client.client_id)
    _check_claims(claims, client.client_id, audiences, now)
    try:
        # Kept as long as the assertion is accepted (exp + LEEWAY), so no purge opens a replay window.
        fresh = await model.consume_assertion_jti(client.client_id, claims["jti"], math.ceil(claims["exp"]) + LEEWAY)
    except ValueError:
        raise InvalidClient("client assertion jti is too long") from None
    if not fresh:
        logger.warning("client assertion replayed by client %s", client.client_id)
        raise InvalidClient("client assertion was already used")


def _decode(assertion: str, alg: str, candidates: list[dict[str, Any]], client_id: str) -> dict[str, Any]:
    # Time claims are checked against the injected clock in _check_claims, not PyJWT's time.time().
    options: Any = {"verify_exp": False, "verify_nbf": False, "verify_iat": False, "verify_aud": False,
                    "verify_iss": False}
    for jwk in candidates:
        key = _public_key(jwk, alg)
        if key is None:
            continue
        try:
            claims: dict[str, Any] = jwt.decode(assertion, key, algorithms=[alg], options=options)
        except jwt.InvalidSignatureError:
            continue
        except jwt.PyJWTError as exc:
            logger.info("client assertion of %s refused: %s", client_id, exc)
            raise InvalidClient("client assertion is not a valid JWT") from None
        return claims
    logger.info("client assertion of %s: no registered key verifies it", client_id)
    raise InvalidClient("client assertion signature is invalid")


def _check_claims(claims: Mapping[str, Any], client_id: str, audiences: tuple[str, ...], now: int) -> None:
    if claims.get("iss") != client_id or claims.get("sub") != client_id:
        raise InvalidClient("client assertion iss and sub must both be the client_id")
    aud = claims.get("aud")
    aud_values = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else []
    if not any(isinstance(a, str) and a in audiences for a in aud_values):
        raise InvalidClient("client assertion aud must be this server's token endpoint or issuer")
    exp = claims.get("exp")  # RFC 7519 §2 NumericDate: integer or not
    if not isinstance(exp, (int, float)) or isinstance(exp, bool) or not math.isfinite(exp):
        raise InvalidClient("client assertion must have a numeric exp")
    if exp <= now - LEEWAY:
        raise InvalidClient("client assertion has expired")
    if exp > now + MAX_LIFETIME + LEEWAY:
        raise InvalidClient(f"client assertion exp must be at most {MAX_LIFETIME} seconds ahead")
    for name in ("nbf", "iat"):
        value = claims.get(name)
        if value is None:
            continue
        if not isinstance(value, (int, float)) or isinstance(value, bool) or value > now + LEEWAY:
            raise InvalidClient(f"client assertion {name} is not a past time")
    jti = claims.get("jti")
    if not isinstance(jti, str) or not 0 < len(jti) <= MAX_JTI_LENGTH:
        raise InvalidClient("client assertion must have a jti")
