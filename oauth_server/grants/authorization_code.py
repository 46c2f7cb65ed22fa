"""The authorization_code grant (RFC 6749 §4.1.3, OAuth 2.1 §4.1.3, RFC 7636 §4.6)."""

from __future__ import annotations

import logging

from oauth_server import pkce, tokens
from oauth_server.audit.events import CodeIssued, CodeReplayDetected, ConsentApproved, digest_ref
from oauth_server.audit.trail import NO_AUDIT, AuditTrail
from oauth_server.errors import InvalidGrant, InvalidRequest, InvalidTarget
from oauth_server.grants.issue import GrantContext, Issuance, first_tokens
from oauth_server.model.base import OAuthServerModel
from oauth_server.records import AuthorizationCode, Grant, PendingAuthorization
from oauth_server.resources import resource_matches
from oauth_server.settings import OAuthServerSettings

logger = logging.getLogger("oauth_server")


async def consume(model: OAuthServerModel, code: str, now: int, *, audit: AuditTrail = NO_AUDIT,
                  presented_by: str | None = None) -> AuthorizationCode:
    """Consume the code atomically. A code seen again is a replay: its whole grant is revoked.

    RFC 6749 §4.1.2 / RFC 9700 §4.5: codes are single use, and on a second use the server
    SHOULD revoke the tokens issued from it. ``audit`` hears of the replay (``presented_by``:
    the client that sent it).
    """
    code_digest = tokens.digest(code)
    record = await model.consume_authorization_code(code_digest, now)
    if record is None:
        replayed = await model.get_authorization_code(code_digest)
        if replayed is not None:
            logger.warning("authorization code replayed; revoking grant %s", replayed.grant_id)
            await model.revoke_grant(replayed.grant_id, now)
            await audit.emit(CodeReplayDetected(
                time=now, client_id=replayed.client_id, subject=replayed.subject, grant_id=replayed.grant_id,
                code_ref=digest_ref(code_digest), presented_by=presented_by))
        raise InvalidGrant("authorization code is invalid, expired or already used")
    return record


def check_binding(ctx: GrantContext, record: AuthorizationCode, redirect_uri: str | None, resource: str | None) -> None:
    """Everything the code is bound to. Called after consuming, so any failure burns the code."""
    if record.expires_at <= ctx.now:
        raise InvalidGrant("authorization code has expired")
    if record.client_id != ctx.client.client_id:
        logger.warning("code for client %s presented by client %s", record.client_id, ctx.client.client_id)
        raise InvalidGrant("authorization code was issued to another client")
    # OAuth 2.1 §4.1.3 / RFC 6749 §4.1.3: identical redirect_uri when it was sent at /authorize.
    if record.redirect_uri_provided_explicitly or redirect_uri is not None:
        if redirect_uri != record.redirect_uri:
            raise InvalidGrant("redirect_uri does not match the authorization request")
    # RFC 8707 §2.2: a resource at the token endpoint must be one the code was granted for.
    if not resource_matches(resource, record.resource):
        raise InvalidTarget("resource does not match the authorization request")


async def redeem(
    ctx: GrantContext, code: str, code_verifier: str | None, redirect_uri: str | None, resource: str | None
) -> Issuance:
    """Exchange a code for tokens."""
    if not code:
        raise InvalidRequest("code is required")
    if not code_verifier:
        raise InvalidRequest("code_verifier is required (PKCE, RFC 7636 §4.5)")
    record = await consume(ctx.model, code, ctx.now, audit=ctx.audit, presented_by=ctx.client.client_id)
    check_binding(ctx, record, redirect_uri, resource)
    if not pkce.verify(code_verifier, record.code_challenge):
        raise InvalidGrant("code_verifier does not match the code_challenge (RFC 7636 §4.6)")
    return await issue_for_code(ctx, record)


async def issue_for_code(ctx: GrantContext, record: AuthorizationCode) -> Issuance:
    """The first tokens of the code's grant (``issue.first_tokens``)."""
    return await first_tokens(ctx, grant_id=record.grant_id, subject=record.subject, scopes=record.scopes,
                              resource=record.resource)


async def approve_pending(model: OAuthServerModel, settings: OAuthServerSettings, pending: PendingAuthorization,
                          subject: str, scopes: tuple[str, ...], now: int, *,
                          audit: AuditTrail = NO_AUDIT) -> str | None:
    """The user approved ``pending`` (as read by the form's check): take the request and issue its
    code in one step. None if the request was already answered: nothing is stored.

    ``consume_pending_authorization`` then ``save_authorization_code``, folded where the model offers
    ``approve_pending_authorization`` (on Postgres one statement). Exact: of a pending request
    nothing but the browser binding ever changes, so the record read by the form's check is the
    one consumed, and one decision per request still holds (the model decides who took it).
    """
    code, record, grant = new_code(settings, pending, subject, scopes, now)
    try:
        approved = await model.approve_pending_authorization(pending.request_digest, record, grant)
    except NotImplementedError:
        if await model.consume_pending_authorization(pending.request_digest) is None:
            return None
        await model.save_authorization_code(record, grant)
        approved = True
    if not approved:
        return None
    await _approved(audit, pending, record, grant, now)
    return code


def new_code(settings: OAuthServerSettings, pending: PendingAuthorization, subject: str,
             scopes: tuple[str, ...], now: int) -> tuple[str, AuthorizationCode, Grant]:
    """The raw code, its record and its new grant; nothing is stored yet."""
    code = tokens.new_token()
    grant = Grant(
        grant_id=tokens.new_id(),
        client_id=pending.client_id,
        subject=subject,
        scopes=scopes,
        resource=pending.resource,
        created_at=now,
        # After this no credential of the grant can be live: the code is redeemed within its
        # lifetime, refreshes stop at the absolute lifetime, the last access token then expires.
        expires_at=now + settings.authorization_code_lifetime + settings.refresh_token_absolute_lifetime
        + settings.access_token_lifetime,
    )
    record = AuthorizationCode(
        code_digest=tokens.digest(code),
        grant_id=grant.grant_id,
        client_id=pending.client_id,
        subject=subject,
        redirect_uri=pending.redirect_uri,
        redirect_uri_provided_explicitly=pending.redirect_uri_provided_explicitly,
        scopes=scopes,
        code_challenge=pending.code_challenge,
        resource=pending.resource,
        expires_at=now + settings.authorization_code_lifetime,
    )
    return code, record, grant


async def _approved(audit: AuditTrail, pending: PendingAuthorization, record: AuthorizationCode, grant: Grant,
                    now: int) -> None:
    await audit.emit(ConsentApproved(time=now, client_id=pending.client_id, subject=record.subject,
                                     grant_id=grant.grant_id, scopes=record.scopes, requested_scopes=pending.scopes,
                                     resource=pending.resource))
    await audit.emit(CodeIssued(time=now, client_id=pending.client_id, subject=record.subject, grant_id=grant.grant_id,
                                code_ref=digest_ref(record.code_digest), expires_at=record.expires_at))
