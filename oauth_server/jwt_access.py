"""JWT access tokens as RFC 9068 profiles them: what we put in, and how we check our own.

A resource server in another process verifies these with our JWKS alone. In this process the
model still holds every issued token (by digest), so revocation, introspection and grant
revocation work exactly as for opaque tokens; the signature check here only keeps a forged or
expired token from costing a database read.
"""

from __future__ import annotations

from typing import Any

import jwt

from oauth_server import scopes as scope_strings
from oauth_server.records import AccessToken
from oauth_server.settings import OAuthServerSettings
from oauth_server.signing import LoadedKey, SigningKeys

#: RFC 9068 §2.1: the JOSE header ``typ`` of a JWT access token.
TYP = "at+jwt"


def encode(key: LoadedKey, settings: OAuthServerSettings, record: AccessToken, token_id: str, now: int) -> str:
    """RFC 9068 §2.2: ``iss``, ``exp``, ``aud`` (the resource, RFC 8707), ``sub``, ``client_id``,
    ``iat``, ``jti``, and ``scope`` (§2.2.3, space-separated). ``sub`` is the user, or the client
    itself for a grant with no user (RFC 9068 §2.2: the subject is then the client)."""
    claims: dict[str, Any] = {
        "iss": settings.issuer_url,
        "sub": record.subject,
        "aud": record.resource,
        "client_id": record.client_id,
        "scope": scope_strings.join(record.scopes),
        "jti": token_id,
        "iat": now,
        "exp": record.expires_at,
    }
    return jwt.encode(claims, key.private_key, algorithm=key.algorithm, headers={"kid": key.kid, "typ": TYP})


def looks_like_jwt(token: str) -> bool:
    """Three base64url parts: worth a signature check. Opaque tokens are 43 characters, no dots."""
    return token.count(".") == 2


async def verify_own(token: str, signing: SigningKeys, settings: OAuthServerSettings, now: int) -> bool:
    """Whether ``token`` is a JWT access token we signed, unexpired, for one of our resources.

    RFC 9068 §4: ``typ`` is ``at+jwt``, the signature verifies with the key ``kid`` names (and
    only with that key's algorithm: never ``none``, never another family), ``iss`` is ours,
    ``aud`` one of our resources, ``exp`` in the future. No leeway: our own clock issued it.
    """
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        return False
    kid = header.get("kid")
    if header.get("typ") not in (TYP, "application/at+jwt") or not isinstance(kid, str):
        return False
    key = await signing.verification_key(kid)
    if key is None or header.get("alg") != key.algorithm:
        return False
    try:
        claims = jwt.decode(token, key.public_key, algorithms=[key.algorithm], issuer=settings.issuer_url,
                            audience=list(settings.resources),
                            # Times are compared below with the server's clock, not PyJWT's.
                            options={"require": ["exp", "iat", "jti", "sub"], "verify_exp": False,
                                     "verify_iat": False, "verify_nbf": False})
    except jwt.PyJWTError:
        return False
    expires_at = claims.get("exp")
    return isinstance(expires_at, int) and expires_at > now
