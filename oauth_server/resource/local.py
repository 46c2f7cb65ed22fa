"""``LocalVerifier``: our own ``AuthorizationServer`` as one more ``TokenVerifier``.

The web layer checks every token through ``TokenVerifier``; an MCP server in the same process
as our authorization server hands the server itself to ``require_bearer_auth`` and gets this
adapter. It does not care how the server verifies (digest lookup or JWT): it converts the
``AccessToken`` record ``verify_access_token`` returns.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from oauth_server.errors import StorageUnavailable
from oauth_server.records import AccessToken
from oauth_server.resource.verified import VerifiedToken, VerifierUnavailable

if TYPE_CHECKING:  # the server imports the resource package (its grants reuse ``resource.jwks``)
    from oauth_server.server import AuthorizationServer


def verified_token(record: AccessToken, issuer: str) -> VerifiedToken:
    """Our ``AccessToken`` record as a ``VerifiedToken``; ``iss`` goes into ``claims`` so the
    MCP SDK's ``principal_components`` sees the issuer."""
    return VerifiedToken(
        subject=record.subject,
        client_id=record.client_id,
        scopes=record.scopes,
        audience=(record.resource,),
        issuer=issuer,
        expires_at=record.expires_at,
        claims={"iss": issuer},
    )


class LocalVerifier:
    """Verify tokens our ``server`` issued, for ``resource`` (default: its ``resource_server_url``)."""

    def __init__(self, server: AuthorizationServer, resource: str | None = None) -> None:
        self.server = server
        self.resource = resource or server.settings.resource_server_url

    async def verify(self, token: str) -> VerifiedToken | None:
        """``server.verify_access_token``; a token for another of the server's resources is not
        valid here (RFC 8707 §2, MCP authorization: audience binding)."""
        try:
            record = await self.server.verify_access_token(token)
        except StorageUnavailable as exc:
            raise VerifierUnavailable("token storage is unavailable") from exc
        if record is None or record.resource != self.resource:
            return None
        return verified_token(record, self.server.settings.issuer_url)
