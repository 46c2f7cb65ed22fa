"""The device_code grant: a device polls the token endpoint until its user decides (RFC 8628 §3.4-§3.5).

Every poll is recorded (``poll_device_authorization``), so the interval is enforced per device
code, across processes: a poll sooner than the interval answers ``slow_down`` and adds 5 seconds
to it. The answers, in this order: another client's device code or an unknown one is
``invalid_grant``; a used one is a replay (its grant is revoked, RFC 9700 §4.5 as for codes);
then ``expired_token``, ``access_denied``, ``slow_down``, and for an approved one the tokens,
after consuming it atomically, else ``authorization_pending``. Only an approved, unexpired,
unconsumed record can be consumed (the model's condition, not only this module's), so a denied
or expired request never yields tokens whatever runs concurrently.
"""

from __future__ import annotations

import logging
from typing import NoReturn

from oauth_server import tokens
from oauth_server.audit.events import CodeReplayDetected, digest_ref
from oauth_server.errors import (
    AuthorizationPending,
    DeviceAccessDenied,
    ExpiredToken,
    InvalidGrant,
    InvalidRequest,
    InvalidTarget,
    SlowDown,
    UnauthorizedClient,
)
from oauth_server.grants.issue import GrantContext, Issuance, first_tokens
from oauth_server.records import DEVICE_APPROVED, DEVICE_DENIED, DeviceAuthorization
from oauth_server.resources import resource_matches

logger = logging.getLogger("oauth_server")

#: RFC 8628 §3.4: the ``grant_type`` of a device access token request.
GRANT_TYPE = "urn:ietf:params:oauth:grant-type:device_code"


async def redeem(ctx: GrantContext, device_code: str, resource: str | None) -> Issuance:
    """RFC 8628 §3.4: one poll of the device access token request."""
    if not ctx.settings.device_authorization_grant:
        raise UnauthorizedClient("the device authorization grant is not enabled")
    if GRANT_TYPE not in ctx.client.grant_types:
        raise UnauthorizedClient("client is not registered for the device_code grant")
    if not device_code:
        raise InvalidRequest("device_code is required")
    device_digest = tokens.digest(device_code)
    polled = await ctx.model.poll_device_authorization(device_digest, ctx.now)
    if polled is None:
        raise InvalidGrant("device code is invalid")
    record, on_time = polled
    if record.client_id != ctx.client.client_id:
        logger.warning("device code of client %s presented by client %s", record.client_id, ctx.client.client_id)
        raise InvalidGrant("device code is invalid")
    if record.consumed_at is not None:
        await _replayed(ctx, record)
    if record.expires_at <= ctx.now:
        raise ExpiredToken("the device code has expired; start a new device authorization")
    if record.status == DEVICE_DENIED:
        raise DeviceAccessDenied("the user denied the request")
    if not on_time:
        raise SlowDown(f"polled too often; wait {record.poll_interval} s between requests")
    if record.status != DEVICE_APPROVED:
        raise AuthorizationPending("the user has not approved the request yet")
    consumed = await ctx.model.consume_device_authorization(device_digest, ctx.now)
    if consumed is None:
        await _replayed(ctx, record)  # a concurrent poll consumed it first
    # RFC 8707 §2.2: a resource here must be the one the device asked for; after consuming, so
    # a mismatch burns the device code as it burns an authorization code.
    if not resource_matches(resource, consumed.resource):
        raise InvalidTarget("resource does not match the device authorization request")
    return await issue(ctx, consumed)


async def _replayed(ctx: GrantContext, record: DeviceAuthorization) -> NoReturn:
    """A used device code presented again: its grant is revoked (as RFC 9700 §4.5 for codes)."""
    if record.grant_id is not None:
        logger.warning("device code replayed; revoking grant %s", record.grant_id)
        await ctx.model.revoke_grant(record.grant_id, ctx.now)
        await ctx.audit.emit(CodeReplayDetected(
            time=ctx.now, client_id=record.client_id, subject=record.subject, grant_id=record.grant_id,
            code_ref=digest_ref(record.device_code_digest), presented_by=ctx.client.client_id))
    raise InvalidGrant("device code was already used")


async def issue(ctx: GrantContext, record: DeviceAuthorization) -> Issuance:
    """The first tokens of the grant the user's approval created (``issue.first_tokens``)."""
    if record.grant_id is None or record.subject is None:
        raise InvalidGrant("device authorization has no grant")
    return await first_tokens(ctx, grant_id=record.grant_id, subject=record.subject, scopes=record.scopes,
                              resource=record.resource)
