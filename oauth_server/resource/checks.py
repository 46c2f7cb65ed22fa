"""The claim rules every foreign token passes, JWT or introspected, before it is accepted.

RFC 9068 §4 lists them for JWT access tokens, which must carry ``iss``, ``aud`` and ``exp``.
An introspection answer comes from the issuer itself over an authenticated channel, so ``iss``
and ``exp`` are checked only when present; ``aud`` is required by default all the same: the
MCP authorization spec makes audience binding a MUST (RFC 8707), and an answer without it may
describe a refresh token (node-oidc-provider omits ``token_type`` for those) or a token minted
for another resource.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeGuard

from oauth_server.resource.claims import RoleRules
from oauth_server.resource.verified import VerifiedToken
from oauth_server.resources import same_resource


def audiences(value: object) -> tuple[str, ...] | None:
    """RFC 7519 §4.1.3: ``aud`` is one string or an array of strings; None when malformed."""
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return tuple(value)
    return None


def _number(value: object) -> TypeGuard[int | float]:
    """RFC 7519 §2 NumericDate: a JSON number (``True`` is not one, though Python says int)."""
    return isinstance(value, int | float) and not isinstance(value, bool)


#: RFC 9068 §2.2: a JWT access token must carry these.
JWT_REQUIRED = frozenset({"iss", "aud", "exp"})
#: An introspection answer must at least name the audience (see ``IssuerConfig``).
INTROSPECTION_REQUIRED = frozenset({"aud"})


def why_refused(
    claims: Mapping[str, Any], *, issuer: str, resource: str, now: float, leeway: float, required: frozenset[str]
) -> str | None:
    """The first rule the claims break, or None. ``iss``, ``aud`` and ``exp`` are checked when
    present, and must be present when ``required`` names them.

    ``aud`` must name this resource, compared as our authorization server compares resource
    indicators (``resources.same_resource``: equal but for a trailing slash, which MCP clients
    add or drop); ``iss`` is compared exactly (RFC 9068 §4 step 3)."""
    if "iss" in required or "iss" in claims:
        if claims.get("iss") != issuer:
            return "iss is not the issuer (RFC 9068 §4 step 3)"
    if "aud" in required or "aud" in claims:
        aud = audiences(claims.get("aud"))
        if aud is None or not any(same_resource(value, resource) for value in aud):
            return "aud does not name this resource (RFC 9068 §4 step 4, RFC 8707)"
    exp = claims.get("exp")
    if "exp" in required or exp is not None:
        if not _number(exp) or now >= exp + leeway:
            return "expired or without exp (RFC 7519 §4.1.4)"
    nbf = claims.get("nbf")
    if nbf is not None and (not _number(nbf) or now < nbf - leeway):
        return "not valid yet (RFC 7519 §4.1.5)"
    if "cnf" in claims:
        # RFC 9449 §7 / RFC 8705 §3: a sender-constrained token is valid only with its proof
        # (DPoP or the client certificate), which this bearer check does not verify.
        return "sender-constrained token (cnf) presented as a bearer token"
    return None


def verified(claims: Mapping[str, Any], issuer: str, rules: RoleRules) -> VerifiedToken | None:
    """The accepted claims as a ``VerifiedToken``; None when they name nobody.

    RFC 9068 §2.2: ``sub`` is required; for a client credentials token it identifies the
    client, so a missing ``sub`` falls back to ``client_id`` (RFC 7662 answers may omit ``sub``).
    ``azp`` is where Entra and Keycloak put the client (OpenID Connect Core §2).
    """
    client_id = claims.get("client_id", claims.get("azp"))
    client_id = client_id if isinstance(client_id, str) and client_id else None
    subject = claims.get("sub")
    subject = subject if isinstance(subject, str) and subject else client_id
    if subject is None:
        return None
    roles = rules.roles(claims)
    exp = claims.get("exp")
    jti = claims.get("jti")
    return VerifiedToken(
        subject=subject,
        client_id=client_id,
        scopes=rules.scopes(claims, roles),
        audience=audiences(claims.get("aud")) or (),
        issuer=issuer,
        expires_at=int(exp) if _number(exp) else None,
        roles=roles,
        token_id=jti if isinstance(jti, str) else None,
        claims=dict(claims),
    )
