"""``JWTVerifier``: RFC 9068 JWT access tokens checked against the issuer's published keys.

The algorithm comes from an allow-list the operator sets, never from the token alone
(RFC 8725 §2.1, §3.1): ``none`` is never in it, nor any HMAC algorithm, since a resource
server only holds public keys and an HS256 token "signed" with a public key as the secret is
the classic key confusion attack. Each candidate key is bound to the token's algorithm and must
be of that algorithm's type (``jwks.KeySet``), so an RSA key never checks an ES256 signature.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

import jwt

from oauth_server.resource.checks import JWT_REQUIRED, verified, why_refused
from oauth_server.resource.claims import RoleRules
from oauth_server.resource.jwks import KeySet
from oauth_server.resource.verified import RememberedTokens, VerifiedToken

logger = logging.getLogger("oauth_server.resource")

#: Asymmetric algorithms pyjwt verifies; the defaults leave out the rarer ones (RFC 7518 §3.1).
SUPPORTED_ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA")
DEFAULT_ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "ES256", "ES384", "EdDSA")
#: RFC 9068 §2.1 / RFC 7515 §4.1.9: ``typ`` compared case-insensitively, "application/" optional.
AT_JWT_TYPES = frozenset({"at+jwt", "application/at+jwt"})
JWT_TYPES = frozenset({"jwt", "application/jwt"})
#: Signature only: every claim is checked by ``checks.why_refused`` against the injected clock.
_DECODE_OPTIONS: Any = {
    "verify_signature": True, "verify_exp": False, "verify_nbf": False, "verify_iat": False,
    "verify_aud": False, "verify_iss": False, "verify_sub": False, "verify_jti": False,
    "require": [], "enforce_minimum_key_length": True,
}


def check_algorithms(algorithms: Iterable[str]) -> tuple[str, ...]:
    """The allow-list, refused at configuration time if it holds ``none``, an HMAC or anything
    not asymmetric (RFC 8725 §3.1, §3.2)."""
    chosen = tuple(algorithms)
    unsafe = [alg for alg in chosen if alg not in SUPPORTED_ALGORITHMS]
    if unsafe or not chosen:
        raise ValueError(f"algorithms must be asymmetric signature algorithms from {SUPPORTED_ALGORITHMS}, "
                         f"got {unsafe or 'nothing'}")
    return chosen


class JWTVerifier:
    """Verify JWT access tokens of ``issuer`` for ``resource`` with the keys of ``keys``.

    ``accept_typ_jwt``: also accept ``typ: JWT``. RFC 9068 §4 asks for ``at+jwt`` so that an ID
    token cannot pass as an access token (RFC 8725 §3.11); Keycloak and Entra send ``JWT``, and
    for them the audience check (an ID token's ``aud`` is a client, not this resource) is what
    keeps ID tokens out. A token without ``typ`` is accepted either way.
    """

    def __init__(
        self,
        *,
        resource: str,
        issuer: str,
        keys: KeySet,
        algorithms: Iterable[str] = DEFAULT_ALGORITHMS,
        leeway: float = 30.0,
        accept_typ_jwt: bool = False,
        rules: RoleRules | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.resource = resource
        self.issuer = issuer
        self.keys = keys
        self.algorithms = check_algorithms(algorithms)
        self.leeway = leeway
        self.types = AT_JWT_TYPES | JWT_TYPES if accept_typ_jwt else AT_JWT_TYPES
        self.rules = rules or RoleRules()
        self.clock = clock
        self._remembered = RememberedTokens()

    async def verify(self, token: str) -> VerifiedToken | None:
        """RFC 9068 §4: header (alg, typ), signature, then ``iss``, ``aud``, ``exp``, ``nbf``.

        A token that passed is remembered (``RememberedTokens``: until its ``exp``, a minute at
        most). Raises ``VerifierUnavailable`` when the keys cannot be fetched.
        """
        key, now = RememberedTokens.key(token), self.clock()
        remembered = self._remembered.get(key, now)
        if remembered is not None:
            return remembered
        result = await self._verify(token)
        if result is not None:
            self._remembered.put(key, result, now)
        return result

    async def _verify(self, token: str) -> VerifiedToken | None:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            return None
        alg, typ, kid = header.get("alg"), header.get("typ"), header.get("kid")
        if alg not in self.algorithms:
            logger.info("JWT refused: alg %r is not allowed (RFC 8725 §3.1)", alg)
            return None
        if typ is not None and (not isinstance(typ, str) or typ.lower() not in self.types):
            logger.info("JWT refused: typ %r (RFC 9068 §4 step 1)", typ)
            return None
        if kid is not None and not isinstance(kid, str):
            return None
        claims = None
        for key in await self.keys.keys_for(kid, alg):
            try:
                claims = jwt.decode(token, key, algorithms=[alg], options=_DECODE_OPTIONS)
                break
            except jwt.InvalidSignatureError:
                continue
            except jwt.PyJWTError as exc:
                logger.info("JWT refused: %s", exc)
                return None
        if claims is None:
            logger.info("JWT refused: no key %r of %s verifies it", kid, self.issuer)
            return None
        reason = why_refused(claims, issuer=self.issuer, resource=self.resource, now=self.clock(),
                             leeway=self.leeway, required=JWT_REQUIRED)
        if reason is not None:
            logger.info("JWT refused: %s", reason)
            return None
        return verified(claims, self.issuer, self.rules)
