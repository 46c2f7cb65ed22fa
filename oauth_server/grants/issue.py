"""What every grant shares: its context, and the minting of an access (and refresh) token.

A grant module's entry point takes a ``GrantContext`` and the grant's own parameters, so a new
grant (client_credentials, device_code, jwt-bearer) starts from a short signature.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from typing import Any

from oauth_server import jwt_access, tokens
from oauth_server import scopes as scope_strings
from oauth_server.audit.trail import NO_AUDIT, AuditTrail
from oauth_server.errors import InvalidGrant, StorageUnavailable
from oauth_server.model.base import OAuthServerModel
from oauth_server.records import AccessToken, Client, RefreshToken
from oauth_server.settings import OAuthServerSettings
from oauth_server.signing import LoadedKey

logger = logging.getLogger("oauth_server")


@dataclass(frozen=True, slots=True)
class GrantContext:
    """One token request: where records live, the rules' settings, its time, its authenticated client."""

    model: OAuthServerModel
    settings: OAuthServerSettings
    now: int
    client: Client
    #: The key that signs access tokens when they are JWTs (RFC 9068); None: opaque tokens.
    signing_key: LoadedKey | None = None
    #: Where the grant reports what it detected (replay, reuse): the server's ``on_event``.
    audit: AuditTrail = NO_AUDIT


@dataclass(frozen=True, slots=True)
class Issuance:
    """Raw tokens for the response and the records (digests only) for the model."""

    access_token: str
    refresh_token: str | None
    access: AccessToken
    refresh: RefreshToken | None

    def response(self, settings: OAuthServerSettings) -> dict[str, Any]:
        """RFC 6749 §5.1 token response."""
        body: dict[str, Any] = {
            "access_token": self.access_token,
            "token_type": "Bearer",
            "expires_in": settings.access_token_lifetime,
            "scope": scope_strings.join(self.access.scopes),
        }
        if self.refresh_token is not None:
            body["refresh_token"] = self.refresh_token
        return body


def refresh_token_allowed(ctx: GrantContext, granted_scopes: tuple[str, ...]) -> bool:
    """Whether the grant gets a refresh token: the server issues them, the client is registered
    for the refresh_token grant (OAuth 2.1 §4.3), and, when this server offers ``offline_access``,
    the grant includes it.

    MCP 2026-07-28 (Refresh Tokens): clients "MAY add ``offline_access`` to the ``scope``
    parameter of the authorization and token requests when the Authorization Server metadata
    contains it in ``scopes_supported``" and "MUST NOT assume refresh tokens will be issued; the
    AS retains discretion". OpenID Connect Core §11: "This scope value requests that an OAuth 2.0
    Refresh Token be issued". So an operator who lists ``offline_access`` in ``scopes_supported``
    chooses that scope as the request for refresh tokens: a grant gets them only when the client
    asked for it and it was granted (the user may withhold it through ``user_scopes``). Without
    ``offline_access`` in ``scopes_supported`` nobody can ask for it, and the AS's discretion is
    to give refresh tokens to every client registered for them, as MCP clients expect.

    The check reads the grant's scopes, so a refresh that narrows the access token's scope keeps
    rotating, and a grant made before the operator offered the scope stops at its next refresh.
    """
    if not ctx.settings.issue_refresh_tokens or "refresh_token" not in ctx.client.grant_types:
        return False
    if scope_strings.OFFLINE_ACCESS in ctx.settings.scopes_supported:
        return scope_strings.OFFLINE_ACCESS in granted_scopes
    return True


def mint(
    ctx: GrantContext,
    *,
    grant_id: str,
    subject: str,
    scopes: tuple[str, ...],
    granted_scopes: tuple[str, ...],
    resource: str,
    grant_expires_at: int,
) -> Issuance:
    """New credentials for ``ctx.client`` in grant ``grant_id``; nothing is stored yet."""
    settings, now = ctx.settings, ctx.now
    access = AccessToken(
        token_digest="",
        grant_id=grant_id,
        client_id=ctx.client.client_id,
        subject=subject,
        scopes=scopes,
        resource=resource,
        expires_at=now + settings.access_token_lifetime,
    )
    if ctx.signing_key is None:
        access_token = tokens.new_token()
    else:
        access_token = jwt_access.encode(ctx.signing_key, settings, access, tokens.new_id(), now)
    # The model keeps a JWT by digest too: revocation and introspection work as for opaque ones.
    access = dataclasses.replace(access, token_digest=tokens.digest(access_token))
    refresh_token: str | None = None
    refresh: RefreshToken | None = None
    if refresh_token_allowed(ctx, granted_scopes) and grant_expires_at > now:
        refresh_token = tokens.new_token()
        refresh = RefreshToken(
            token_digest=tokens.digest(refresh_token),
            grant_id=grant_id,
            client_id=ctx.client.client_id,
            subject=subject,
            scopes=granted_scopes,
            resource=resource,
            expires_at=min(now + settings.refresh_token_lifetime, grant_expires_at),
            grant_expires_at=grant_expires_at,
            granted_scopes=granted_scopes,
        )
    return Issuance(access_token, refresh_token, access, refresh)


async def record_use(ctx: GrantContext, grant_id: str) -> None:
    """Note that the grant was used now (a user's connected apps show it), after its tokens were
    stored. Bookkeeping: an outage here is logged, and the stored tokens are still handed out."""
    try:
        await ctx.model.record_grant_use(grant_id, ctx.now)
    except StorageUnavailable:
        logger.warning("could not record the use of grant %s", grant_id)


async def store_in_use(ctx: GrantContext, issuance: Issuance) -> bool:
    """Store the issuance into its grant and record the use (``save_tokens`` then ``record_use``),
    in one step where the model folds them (``save_tokens_recording_use``). False: the grant is
    revoked or unknown, and nothing was stored or recorded."""
    try:
        return await ctx.model.save_tokens_recording_use(issuance.access, issuance.refresh, ctx.now)
    except NotImplementedError:
        pass
    if not await ctx.model.save_tokens(issuance.access, issuance.refresh):
        return False
    await record_use(ctx, issuance.access.grant_id)
    return True


async def first_tokens(ctx: GrantContext, *, grant_id: str, subject: str, scopes: tuple[str, ...],
                       resource: str) -> Issuance:
    """The first tokens of a grant a user approved (an authorization code's or a device's);
    its absolute lifetime starts now (RFC 9700 §4.14.2). A refresh token comes with them under
    ``refresh_token_allowed``.

    A concurrent replay (of the code or the device code) may revoke the grant before these
    tokens are stored: the model then stores nothing, and this redemption fails too (RFC 9700 §4.5).
    """
    issuance = mint(ctx, grant_id=grant_id, subject=subject, scopes=scopes, granted_scopes=scopes,
                    resource=resource, grant_expires_at=ctx.now + ctx.settings.refresh_token_absolute_lifetime)
    if not await store_in_use(ctx, issuance):
        logger.warning("grant %s was revoked before its tokens were stored", grant_id)
        raise InvalidGrant("the grant was revoked")
    return issuance
