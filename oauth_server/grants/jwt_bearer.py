"""The JWT bearer grant for ID-JAGs (RFC 7523 §2.1 and §3; draft-ietf-oauth-identity-assertion-
authz-grant; the MCP enterprise-managed authorization extension, ext-auth §5).

An enterprise identity provider that the operator trusts (``settings.trusted_identity_providers``)
signs an Identity Assertion JWT Authorization Grant for one of our clients and one of our
resources; the client presents it as ``assertion`` with
``grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer``. Every refusal of the assertion is
``invalid_grant`` (RFC 7521 §5.2, RFC 7523 §3.1) with a description naming the rule; the cause
goes to the log. The checks, in order:

- the client is confidential and registered for this grant (``unauthorized_client``), since the
  assertion names the client it was issued to and only authentication proves that is the caller;
- JOSE ``typ`` is ``oauth-id-jag+jwt`` (ext-auth §5.1, RFC 8725 §3.11: no other JWT of the
  provider, an ID token say, can be replayed here);
- ``iss`` is a trusted provider, ``alg`` one of its asymmetric algorithms (never ``none`` or HMAC),
  and the signature verifies with a key of its JWK Set (RFC 7523 §3 items 1 and 9);
- ``aud`` is our issuer (ext-auth §5.1: "MUST identify the Issuer URL"; a trailing slash aside);
- ``client_id`` is the authenticated client (ext-auth §5.1);
- ``exp`` is not past, nor more than ``MAX_LIFETIME`` ahead, and ``iat`` not in the future, with
  ``LEEWAY`` for clock skew (RFC 7523 §3 items 4 and 6: the server "MAY reject JWTs with an exp
  claim value that is unreasonably far in the future"); ``sub`` and ``jti`` are present;
- ``resource`` names one of our resources, and a ``resource`` parameter, if sent, names the same
  one (RFC 8707 §2; ext-auth §4.3 makes the claim REQUIRED) (``invalid_target``);
- the scope is the request's, within the assertion's ``scope`` and the client's registered scope
  (``invalid_scope`` beyond them; none requested: that intersection);
- the ``jti`` was never used before by that provider: ``consume_assertion_jti``, so across
  processes too (RFC 7523 §3 item 7);
- the subject hook (``IdentityProviders.subject``) maps the provider's ``sub`` to ours.

Tokens: an access token in a grant of its own, and no refresh token. The draft's "Refresh Token"
section: the authorization server "SHOULD NOT return a Refresh Token" for an ID-JAG; when the
access token expires the client gets a new ID-JAG from the identity provider, whose policy is
then consulted again, which is the point of enterprise management.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from typing import Any

import jwt

from oauth_server import scopes as scope_strings
from oauth_server.clients import JWT_BEARER
from oauth_server.errors import (
    InvalidGrant,
    InvalidRequest,
    InvalidScope,
    InvalidTarget,
    TemporarilyUnavailable,
    UnauthorizedClient,
)
from oauth_server.grants.client_credentials import allowed_scopes, issue_new_grant
from oauth_server.grants.identity_providers import IdentityProviders
from oauth_server.grants.issue import GrantContext, Issuance
from oauth_server.model.base import MAX_JTI_LENGTH
from oauth_server.params import Params, single
from oauth_server.resource.verified import VerifierUnavailable
from oauth_server.resources import canonical_resource, same_resource
from oauth_server.settings import TrustedIdentityProvider

logger = logging.getLogger("oauth_server")

GRANT_TYPE = JWT_BEARER
#: ext-auth §4.3 / the draft: the JOSE header ``typ`` of an ID-JAG (with or without "application/").
TYPES = ("oauth-id-jag+jwt", "application/oauth-id-jag+jwt")
#: Clock skew allowed between the identity provider and us (RFC 7519 §4.1.4 "some small leeway").
LEEWAY = 30
MAX_ASSERTION_LENGTH = 16 * 1024
#: An ID-JAG is short-lived (the ext-auth example: ``expires_in`` 300); its jti is kept until
#: ``exp``, so a far ``exp`` would be a record kept for ever (or a number no column holds).
MAX_LIFETIME = 3600
#: ``consume_assertion_jti`` keeps jtis per issuer of the assertion; for client assertions that
#: is the client_id, here the provider, under a prefix no client id has (ids are URL-safe
#: tokens or https URLs, never containing a space).
JTI_NAMESPACE = "id-jag "


def _number(value: Any) -> float | None:
    """RFC 7519 §2 NumericDate: a finite JSON number (a bool is not one)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


async def handle(providers: IdentityProviders, ctx: GrantContext, params: Params) -> Issuance:
    """The token endpoint's ``grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer``."""
    client = ctx.client
    if client.is_public:
        raise UnauthorizedClient("the jwt-bearer grant needs a confidential client")
    if GRANT_TYPE not in client.grant_types:
        raise UnauthorizedClient("client is not registered for the jwt-bearer grant")
    assertion = single(params, "assertion")
    if not assertion:
        raise InvalidRequest("assertion is required (RFC 7523 §2.1)")
    provider, claims = await verify(providers, assertion, ctx)
    resource = _resource(ctx, claims, params)
    scopes = _scopes(ctx, claims, single(params, "scope"))
    fresh = await ctx.model.consume_assertion_jti(JTI_NAMESPACE + provider.issuer, claims["jti"],
                                                  math.ceil(claims["exp"]) + LEEWAY)
    if not fresh:
        logger.warning("ID-JAG %r of %s replayed by client %s", claims["jti"], provider.issuer, client.client_id)
        raise InvalidGrant("the assertion was already used")
    subject = await providers.subject(provider, claims)
    if subject is None:
        logger.info("ID-JAG of %s: no local subject for sub %r", provider.issuer, claims["sub"])
        raise InvalidGrant("the assertion's subject is not known here")
    return await issue_new_grant(ctx, subject=subject, scopes=scopes, resource=resource, grant_lifetime=0)


async def verify(providers: IdentityProviders, assertion: str,
                 ctx: GrantContext) -> tuple[TrustedIdentityProvider, dict[str, Any]]:
    """The assertion's provider and claims, signature and claims checked (module docstring)."""
    if len(assertion) > MAX_ASSERTION_LENGTH:
        raise InvalidGrant("the assertion is too long")
    try:
        header = jwt.get_unverified_header(assertion)
        unverified = jwt.decode(assertion, options={"verify_signature": False})
    except jwt.PyJWTError:
        raise InvalidGrant("the assertion is not a JWT") from None
    typ = header.get("typ")
    if not isinstance(typ, str) or typ.lower() not in TYPES:
        raise InvalidGrant("the assertion's typ must be oauth-id-jag+jwt")
    provider = providers.get(unverified.get("iss"))
    if provider is None:
        logger.info("ID-JAG from untrusted issuer %r", unverified.get("iss"))
        raise InvalidGrant("the assertion's issuer is not a trusted identity provider")
    alg = header.get("alg")
    if not isinstance(alg, str) or alg not in provider.algorithms:
        raise InvalidGrant("the assertion's alg is not allowed")
    claims = await _verified_claims(providers, provider, assertion, header, alg)
    _check_claims(claims, ctx)
    return provider, claims


async def _verified_claims(providers: IdentityProviders, provider: TrustedIdentityProvider, assertion: str,
                           header: Mapping[str, Any], alg: str) -> dict[str, Any]:
    kid = header.get("kid") if isinstance(header.get("kid"), str) else None
    try:
        candidates = await providers.keys_for(provider, kid, alg)
    except VerifierUnavailable:
        raise TemporarilyUnavailable("the identity provider's keys cannot be fetched now") from None
    # Times and audience are checked below against the injected clock and our rules.
    options: Any = {"verify_exp": False, "verify_nbf": False, "verify_iat": False, "verify_aud": False,
                    "verify_iss": False}
    for key in candidates:
        try:
            claims: dict[str, Any] = jwt.decode(assertion, key, algorithms=[alg], options=options)
        except jwt.InvalidSignatureError:
            continue
        except jwt.PyJWTError as exc:
            logger.info("ID-JAG of %s refused: %s", provider.issuer, exc)
            raise InvalidGrant("the assertion is not a valid JWT") from None
        return claims
    logger.info("ID-JAG of %s: no key of its JWK Set verifies it (kid %r)", provider.issuer, kid)
    raise InvalidGrant("the assertion's signature is invalid")


def _check_claims(claims: Mapping[str, Any], ctx: GrantContext) -> None:
    aud = claims.get("aud")
    audiences = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else []
    if not any(isinstance(a, str) and same_resource(a, ctx.settings.issuer_url) for a in audiences):
        raise InvalidGrant("the assertion's aud must be this authorization server's issuer")
    if claims.get("client_id") != ctx.client.client_id:
        logger.warning("ID-JAG for client %r presented by %s", claims.get("client_id"), ctx.client.client_id)
        raise InvalidGrant("the assertion was issued to another client")
    exp, iat, nbf = _number(claims.get("exp")), _number(claims.get("iat")), _number(claims.get("nbf", 0))
    if exp is None or iat is None or nbf is None:
        raise InvalidGrant("the assertion must have numeric exp and iat")
    if exp <= ctx.now - LEEWAY:
        raise InvalidGrant("the assertion has expired")
    if exp > ctx.now + MAX_LIFETIME + LEEWAY:
        raise InvalidGrant(f"the assertion's exp must be at most {MAX_LIFETIME} seconds ahead")
    if max(iat, nbf) > ctx.now + LEEWAY:
        raise InvalidGrant("the assertion is not valid yet (iat or nbf in the future)")
    subject, jti = claims.get("sub"), claims.get("jti")
    if not isinstance(subject, str) or not subject:
        raise InvalidGrant("the assertion must have a sub")
    if not isinstance(jti, str) or not 0 < len(jti) <= MAX_JTI_LENGTH:
        raise InvalidGrant("the assertion must have a jti")


def _resource(ctx: GrantContext, claims: Mapping[str, Any], params: Params) -> str:
    claimed = claims.get("resource")
    if not isinstance(claimed, str) or not claimed:
        raise InvalidGrant("the assertion must name a resource")
    resource = canonical_resource(ctx.settings, [claimed])
    requested = params.get("resource") or []
    if len(requested) > 1:
        raise InvalidTarget("only one resource may be requested")
    if requested and not same_resource(requested[0], resource):
        raise InvalidTarget("resource does not match the assertion's resource")
    return resource


def _scopes(ctx: GrantContext, claims: Mapping[str, Any], scope: str | None) -> tuple[str, ...]:
    """requested ∩ the assertion's ``scope`` ∩ the client's registered scope; beyond: invalid_scope."""
    allowed = allowed_scopes(ctx.settings, ctx.client)
    claimed = claims.get("scope")
    if claimed is not None:
        if not isinstance(claimed, str):
            raise InvalidGrant("the assertion's scope must be a string")
        granted_by_idp = scope_strings.parse(claimed) or ()
        allowed = tuple(s for s in allowed if s in granted_by_idp)
    requested = scope_strings.parse(scope)
    scopes = allowed if requested is None else scope_strings.require_subset(
        requested, allowed, "granted by the assertion and registered for this client")
    if not scopes and ctx.settings.scopes_supported:
        raise InvalidScope("the assertion grants none of the client's scopes")
    return scopes
