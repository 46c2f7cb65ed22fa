"""The refresh_token grant with rotation and reuse detection (OAuth 2.1 §4.3, RFC 9700 §4.14).

Reuse grace (``refresh_token_reuse_grace``, seconds, default 0). RFC 9700 §4.14.2 rotates refresh
tokens so that a stolen copy shows itself: whoever presents a rotated token second makes the
server revoke the grant. Real MCP clients also present a just-rotated token twice without any
theft (parallel tool calls refreshing at once, a response lost on the way back), and strict
reuse detection then signs their user out. With a grace of G seconds: a rotated token presented
again while ``now - rotated_at < G`` (``rotated_at``: its FIRST rotation) is rotated again and
yields a fresh pair; at ``now - rotated_at >= G`` reuse revokes the grant as before. The cost:
for G seconds after a rotation, a thief holding the old token gets a pair of their own instead
of being detected (the legitimate client's pair keeps working too). 0 keeps strict single use.
"""

from __future__ import annotations

import logging

from oauth_server import scopes as scope_strings
from oauth_server import tokens
from oauth_server.audit.events import RefreshReuseDetected, digest_ref
from oauth_server.errors import InvalidGrant, InvalidRequest, InvalidTarget, UnauthorizedClient
from oauth_server.grants.issue import GrantContext, Issuance, mint, record_use
from oauth_server.records import RefreshToken
from oauth_server.resources import resource_matches

logger = logging.getLogger("oauth_server")


async def load(ctx: GrantContext, refresh_token: str) -> RefreshToken:
    """Find a usable refresh token. A rotated one presented again revokes its whole grant."""
    if not refresh_token:
        raise InvalidRequest("refresh_token is required")
    record = await ctx.model.get_refresh_token(tokens.digest(refresh_token))
    if record is None:
        raise InvalidGrant("refresh token is invalid, expired or revoked")
    if record.client_id != ctx.client.client_id:
        logger.warning("refresh token of client %s presented by %s", record.client_id, ctx.client.client_id)
        raise InvalidGrant("refresh token was issued to another client")
    if record.rotated_at is not None and not within_grace(ctx, record.rotated_at):
        # RFC 9700 §4.14.2: reuse of a rotated refresh token means one party has a stolen copy.
        logger.warning("rotated refresh token reused; revoking grant %s", record.grant_id)
        await ctx.model.revoke_grant(record.grant_id, ctx.now)
        await reuse_detected(ctx, record)
        raise InvalidGrant("refresh token was already used")
    if record.expires_at <= ctx.now or record.grant_expires_at <= ctx.now:
        raise InvalidGrant("refresh token has expired")
    return record


async def reuse_detected(ctx: GrantContext, record: RefreshToken) -> None:
    """Tell the audit trail that reuse of ``record`` revoked its grant."""
    await ctx.audit.emit(RefreshReuseDetected(
        time=ctx.now, client_id=record.client_id, subject=record.subject, grant_id=record.grant_id,
        refresh_token_ref=digest_ref(record.token_digest), rotated_at=record.rotated_at))


def within_grace(ctx: GrantContext, rotated_at: int) -> bool:
    """Whether a token rotated at ``rotated_at`` may still be presented again (module docstring)."""
    return ctx.now - rotated_at < ctx.settings.refresh_token_reuse_grace


def narrow_scopes(record: RefreshToken, requested: tuple[str, ...] | None) -> tuple[str, ...]:
    """RFC 6749 §6: the scope may only narrow; omitted means the originally granted scope."""
    if requested is None:
        return record.granted_scopes
    return scope_strings.require_subset(requested, record.granted_scopes, "originally granted")


async def rotate(ctx: GrantContext, record: RefreshToken, scopes: tuple[str, ...]) -> Issuance:
    """Issue a new pair and retire the old refresh token in one atomic step."""
    issuance = mint(
        ctx,
        grant_id=record.grant_id,
        subject=record.subject,
        scopes=scopes,
        granted_scopes=record.granted_scopes,
        resource=record.resource,
        grant_expires_at=record.grant_expires_at,
    )
    if issuance.refresh is None:
        raise InvalidGrant("refresh token has reached the end of its grant")
    grace = ctx.settings.refresh_token_reuse_grace
    # Within the grace a token rotated at or after ``reuse_after`` may rotate again.
    reuse_after = ctx.now - grace + 1 if grace > 0 else None
    if not await rotate_in_use(ctx, record.token_digest, issuance, issuance.refresh, reuse_after):
        # Either a concurrent refresh rotated the token first (reuse too, unless within the
        # grace), or the grant was revoked meanwhile (its tokens are gone): only the first is
        # news worth a revocation.
        current = await ctx.model.get_refresh_token(record.token_digest)
        if current is None or current.rotated_at is None or within_grace(ctx, current.rotated_at):
            raise InvalidGrant("refresh token is invalid, expired or revoked")
        logger.warning("concurrent reuse of a refresh token; revoking grant %s", record.grant_id)
        await ctx.model.revoke_grant(record.grant_id, ctx.now)
        await reuse_detected(ctx, current)
        raise InvalidGrant("refresh token was already used")
    return issuance


async def rotate_in_use(ctx: GrantContext, old_digest: str, issuance: Issuance, refresh: RefreshToken,
                        reuse_after: int | None) -> bool:
    """``rotate_refresh_token`` then ``record_use``, in one step where the model folds them
    (``rotate_refresh_token_recording_use``). False: not rotated, nothing stored or recorded."""
    try:
        return await ctx.model.rotate_refresh_token_recording_use(
            old_digest, ctx.now, issuance.access, refresh, reuse_after=reuse_after)
    except NotImplementedError:
        pass
    if not await ctx.model.rotate_refresh_token(old_digest, ctx.now, issuance.access, refresh,
                                                reuse_after=reuse_after):
        return False
    await record_use(ctx, refresh.grant_id)
    return True


async def refresh(ctx: GrantContext, refresh_token: str, scope: str | None, resource: str | None) -> Issuance:
    """RFC 6749 §6: a new access token (and a rotated refresh token) for the same grant."""
    if "refresh_token" not in ctx.client.grant_types:
        raise UnauthorizedClient("client is not registered for the refresh_token grant")
    record = await load(ctx, refresh_token)
    if not resource_matches(resource, record.resource):
        raise InvalidTarget("resource does not match the grant")
    return await rotate(ctx, record, narrow_scopes(record, scope_strings.parse(scope)))
