"""What RFC 7662 introspection tells a caller about a token it may see.

Who may see what is ``AuthorizationServer.introspect``'s rule; these build the §2.2 answers.
"""

from __future__ import annotations

from typing import Any

from oauth_server.records import AccessToken, Client, RefreshToken
from oauth_server.settings import OAuthServerSettings

INACTIVE: dict[str, Any] = {"active": False}


def _answer(settings: OAuthServerSettings, client_id: str, subject: str, scopes: tuple[str, ...], resource: str,
            expires_at: int, token_type: str | None) -> dict[str, Any]:
    """RFC 7662 §2.2 members: ``active``, ``client_id``, ``sub``, ``scope``, ``aud``, ``iss``,
    ``exp`` and, for access tokens, ``token_type`` (RFC 6749 §7.1's type, ``Bearer``)."""
    body: dict[str, Any] = {
        "active": True, "client_id": client_id, "sub": subject, "scope": " ".join(scopes),
        "aud": resource, "iss": settings.issuer_url, "exp": expires_at,
    }
    if token_type is not None:
        body["token_type"] = token_type
    return body


def access_token_answer(settings: OAuthServerSettings, access: AccessToken) -> dict[str, Any]:
    """A live access token (already verified: unexpired, unrevoked, for one of our resources)."""
    return _answer(settings, access.client_id, access.subject, access.scopes, access.resource, access.expires_at,
                   token_type="Bearer")


def refresh_token_answer(settings: OAuthServerSettings, client: Client, refresh: RefreshToken | None,
                         now: int) -> dict[str, Any]:
    """A refresh token is its own client's business only; a rotated or expired one is inactive."""
    if refresh is None or refresh.client_id != client.client_id or refresh.rotated_at is not None:
        return dict(INACTIVE)
    expires_at = min(refresh.expires_at, refresh.grant_expires_at)
    if expires_at <= now:
        return dict(INACTIVE)
    return _answer(settings, refresh.client_id, refresh.subject, refresh.granted_scopes, refresh.resource,
                   expires_at, token_type=None)
