"""The device authorization endpoint and the verification page's rules (RFC 8628 §3.1-§3.3).

No web imports. ``start`` answers ``POST /device_authorization`` for an authenticated (or, if
public, identified) client; ``find`` is the verification page's lookup of a typed user code.

Anti-forgery of the verification page, as for the consent page (``consent``): the browser
carries a random secret in a cookie; the code-entry form carries ``HMAC(secret, "device")`` and
the decision form ``HMAC(secret, "device:" + user code)``. A cross-site POST has no cookie
(SameSite=Lax) and cannot compute either, so no other site can submit a code or a decision in
the user's name; a link (``verification_uri_complete``) only fills the field in.
"""

from __future__ import annotations

import hmac
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from oauth_server import scopes as scope_strings
from oauth_server import tokens, user_codes
from oauth_server.consent import add_query, requested_scopes
from oauth_server.errors import InvalidRequest, InvalidScope, TemporarilyUnavailable, UnauthorizedClient
from oauth_server.grants.device_code import GRANT_TYPE
from oauth_server.model.base import OAuthServerModel
from oauth_server.params import Params, single
from oauth_server.records import DEVICE_PENDING, Client, DeviceAuthorization, Grant
from oauth_server.resources import canonical_resource
from oauth_server.settings import OAuthServerSettings

#: Draws of a user code before giving up: with fewer than a million live codes, a draw collides
#: with probability below 4e-5, so five collisions in a row mean something else is wrong.
USER_CODE_DRAWS = 5
#: Path of the verification page under the issuer.
VERIFICATION_PATH = "device"
#: The message for a code that is unknown, malformed, expired or already decided: one message,
#: so the page tells a guesser nothing about which codes exist.
INVALID_CODE = "This code is not valid or has expired. Check it on your device and try again."


def verification_uri(settings: OAuthServerSettings) -> str:
    return f"{settings.issuer_url.rstrip('/')}/{VERIFICATION_PATH}"


async def start(model: OAuthServerModel, settings: OAuthServerSettings, client: Client, params: Params,
                now: int) -> dict[str, Any]:
    """RFC 8628 §3.1-§3.2: store a pending device authorization; the response for the device.

    The client must be registered for the device_code grant (RFC 6749 §5.2 ``unauthorized_client``);
    ``scope`` and ``resource`` are checked as at /authorize (RFC 8707 §2).
    """
    if GRANT_TYPE not in client.grant_types:
        raise UnauthorizedClient("client is not registered for the device_code grant")
    scope = single(params, "scope")
    scopes = requested_scopes(settings, client, scope)
    if scope_strings.parse(scope) is not None and not scopes:
        raise InvalidScope("no scope requested")
    resource = canonical_resource(settings, params.get("resource") or [])
    device_code = tokens.new_token()
    for _ in range(USER_CODE_DRAWS):
        user_code = user_codes.new_user_code()
        record = DeviceAuthorization(
            device_code_digest=tokens.digest(device_code),
            user_code_digest=tokens.digest(user_codes.normalize(user_code) or ""),
            client_id=client.client_id,
            scopes=scopes,
            resource=resource,
            expires_at=now + settings.device_code_lifetime,
            poll_interval=settings.device_poll_interval,
        )
        if await model.save_device_authorization(record):
            break
    else:
        raise TemporarilyUnavailable("no free user code; retry later")
    uri = verification_uri(settings)
    return {
        "device_code": device_code,
        "user_code": user_code,
        "verification_uri": uri,
        "verification_uri_complete": add_query(uri, {"user_code": user_code}),
        "expires_in": settings.device_code_lifetime,
        "interval": settings.device_poll_interval,
    }


@dataclass(frozen=True, slots=True)
class DeviceRequest:
    """What the verification page shows: the typed code (normalized), its record and its client."""

    user_code: str
    record: DeviceAuthorization
    client: Client


@dataclass(frozen=True, slots=True)
class DeviceForm:
    """A posted decision that passed the anti-forgery check (``AuthorizationServer.check_device_form``).

    Only that check makes one, and ``approve_device``/``deny_device`` take only this, so no
    decision is acted on without it (RFC 9700 §4.4, as ``ConsentForm``).
    """

    request: DeviceRequest


async def find(model: OAuthServerModel, typed: str, now: int) -> tuple[str, DeviceAuthorization]:
    """The pending, unexpired record of a typed user code, or ``InvalidRequest(INVALID_CODE)``."""
    code = user_codes.normalize(typed)
    if code is None:
        raise InvalidRequest(INVALID_CODE)
    record = await model.get_device_authorization(tokens.digest(code))
    if record is None or record.status != DEVICE_PENDING or record.expires_at <= now:
        raise InvalidRequest(INVALID_CODE)
    return code, record


def granted_scopes(record: DeviceAuthorization, allowed: Collection[str] | None,
                   selected: Collection[str] | None) -> tuple[str, ...]:
    """The requested scopes narrowed to what the user may grant and chose, as for a code."""
    granted = tuple(s for s in record.scopes
                    if (allowed is None or s in allowed) and (selected is None or s in selected))
    if record.scopes and not granted:
        raise InvalidScope("you may not grant any of the requested permissions")
    return granted


def new_grant(settings: OAuthServerSettings, record: DeviceAuthorization, subject: str,
              scopes: tuple[str, ...], now: int) -> Grant:
    """The grant an approval creates; it outlives every credential that can come from it."""
    return Grant(
        grant_id=tokens.new_id(), client_id=record.client_id, subject=subject, scopes=scopes,
        resource=record.resource, created_at=now,
        expires_at=record.expires_at + settings.refresh_token_absolute_lifetime + settings.access_token_lifetime,
    )


def entry_token(browser_secret: str) -> str:
    """The anti-forgery token of the code-entry form."""
    return tokens.keyed_tag(browser_secret, "device")


def decision_token(browser_secret: str, user_code: str) -> str:
    """The anti-forgery token of the decision form for one (normalized) user code."""
    return tokens.keyed_tag(browser_secret, f"device:{user_code}")


def form_is_genuine(browser_secret: str | None, form_token: str | None, user_code: str | None = None) -> bool:
    """The posted token is this browser's, for this step (and code), compared in constant time."""
    if not browser_secret or not form_token:
        return False
    expected = entry_token(browser_secret) if user_code is None else decision_token(browser_secret, user_code)
    return hmac.compare_digest(expected, form_token)
