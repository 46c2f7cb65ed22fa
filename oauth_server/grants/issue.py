"""Minting of an access token (and a refresh token) for a grant."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from oauth_server import scopes as scope_strings
from oauth_server import tokens
from oauth_server.records import AccessToken, Client, RefreshToken
from oauth_server.settings import OAuthServerSettings


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


def mint(
    settings: OAuthServerSettings,
    now: int,
    *,
    grant_id: str,
    client: Client,
    subject: str,
    scopes: tuple[str, ...],
    granted_scopes: tuple[str, ...],
    resource: str,
    grant_expires_at: int,
) -> Issuance:
    access_token = tokens.new_token()
    access = AccessToken(
        token_digest=tokens.digest(access_token),
        grant_id=grant_id,
        client_id=client.client_id,
        subject=subject,
        scopes=scopes,
        resource=resource,
        expires_at=now + settings.access_token_lifetime,
    )
    refresh_token: str | None = None
    refresh: RefreshToken | None = None
    # OAuth 2.1 §4.3: refresh tokens only for clients registered for the refresh_token grant.
    if settings.issue_refresh_tokens and "refresh_token" in client.grant_types and grant_expires_at > now:
        refresh_token = tokens.new_token()
        refresh = RefreshToken(
            token_digest=tokens.digest(refresh_token),
            grant_id=grant_id,
            client_id=client.client_id,
            subject=subject,
            scopes=granted_scopes,
            resource=resource,
            expires_at=min(now + settings.refresh_token_lifetime, grant_expires_at),
            grant_expires_at=grant_expires_at,
            granted_scopes=granted_scopes,
        )
    return Issuance(access_token, refresh_token, access, refresh)
