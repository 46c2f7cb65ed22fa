"""The MCP SDK's provider interface on top of ``OAuthServer``'s rules.

``mcp.server.auth.provider.OAuthAuthorizationServerProvider`` splits a token exchange into
``load_*`` (the SDK's handler then checks expiry, redirect URI and PKCE) and ``exchange_*``.
Consumption stays atomic: ``exchange_authorization_code`` consumes the code in one model call,
and a code or refresh token that was already used revokes its grant, as in our own router.

Limitation: the SDK's client authenticator compares a stored plaintext secret, and we store
only digests, so through the SDK's routes only public clients (``token_endpoint_auth_method:
none``) can authenticate. Our router (``mcp_auth_router``) supports every method.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from mcp.server.auth.provider import (
    AccessToken as SDKAccessToken,
)
from mcp.server.auth.provider import (
    AuthorizationCode as SDKAuthorizationCode,
)
from mcp.server.auth.provider import (
    AuthorizationParams,
    AuthorizeError,
    RegistrationError,
    TokenError,
)
from mcp.server.auth.provider import (
    RefreshToken as SDKRefreshToken,
)
from mcp.shared.auth import OAuthClientInformationFull, OAuthToken
from pydantic import AnyUrl

from oauth_server import clients, consent, tokens
from oauth_server.errors import OAuthError
from oauth_server.grants import authorization_code as code_grant
from oauth_server.grants import refresh_token as refresh_grant
from oauth_server.grants.issue import Issuance
from oauth_server.records import AccessToken, Client

if TYPE_CHECKING:
    from oauth_server.model.base import OAuthServerModel
    from oauth_server.settings import OAuthServerSettings


class LoadedAuthorizationCode(SDKAuthorizationCode):
    """The SDK's code record plus the grant it belongs to."""

    grant_id: str


class LoadedRefreshToken(SDKRefreshToken):
    grant_id: str


def sdk_client(client: Client) -> OAuthClientInformationFull:
    info = clients.client_information(client)
    info["client_secret_expires_at"] = client.client_secret_expires_at
    return OAuthClientInformationFull.model_validate(info)


def sdk_access_token(record: AccessToken, token: str, issuer: str) -> SDKAccessToken:
    return SDKAccessToken(
        token=token,
        client_id=record.client_id,
        scopes=list(record.scopes),
        expires_at=record.expires_at,
        resource=record.resource,
        subject=record.subject,
        claims={"iss": issuer},
    )


def _token_error(exc: OAuthError) -> TokenError:
    allowed = {"invalid_request", "invalid_client", "invalid_grant", "unauthorized_client",
               "unsupported_grant_type", "invalid_scope", "invalid_target"}
    code = exc.error if exc.error in allowed else "invalid_request"
    return TokenError(error=code, error_description=exc.description)  # type: ignore[arg-type]


def _oauth_token(issuance: Issuance, settings: OAuthServerSettings) -> OAuthToken:
    return OAuthToken.model_validate(issuance.response(settings))


class SDKProviderMixin:
    """Implements ``OAuthAuthorizationServerProvider`` and ``TokenVerifier`` for ``OAuthServer``."""

    model: OAuthServerModel
    settings: OAuthServerSettings

    def now(self) -> int:
        raise NotImplementedError

    async def verify_access_token(self, token: str) -> AccessToken | None:
        raise NotImplementedError

    async def _client_record(self, client: OAuthClientInformationFull) -> Client:
        record = await self.model.get_client(client.client_id)
        if record is None:
            raise TokenError(error="invalid_client", error_description="unknown client")
        return record

    # -- OAuthAuthorizationServerProvider --------------------------------------------------
    async def get_client(self, client_id: str) -> OAuthClientInformationFull | None:
        record = await self.model.get_client(client_id)
        return None if record is None else sdk_client(record)

    async def register_client(self, client_info: OAuthClientInformationFull) -> None:
        metadata: dict[str, Any] = client_info.model_dump(mode="json", exclude_none=True)
        try:
            record, _ = clients.build_client(metadata, self.settings, self.now(), client_id=client_info.client_id)
        except OAuthError as exc:
            code = "invalid_redirect_uri" if exc.error == "invalid_redirect_uri" else "invalid_client_metadata"
            raise RegistrationError(error=code, error_description=exc.description) from None  # type: ignore[arg-type]
        # Keep the secret the SDK generated and returns to the client; store only its digest.
        if client_info.client_secret:
            record = dataclasses.replace(
                record,
                client_secret_digest=tokens.digest(client_info.client_secret),
                client_secret_expires_at=client_info.client_secret_expires_at or 0,
            )
        await self.model.save_client(record)

    async def authorize(self, client: OAuthClientInformationFull, params: AuthorizationParams) -> str:
        record = await self.model.get_client(client.client_id)
        if record is None:
            raise AuthorizeError(error="unauthorized_client", error_description="unknown client")
        try:
            scopes = consent.requested_scopes(self.settings, record, " ".join(params.scopes or []) or None)
            resource = consent.canonical_resource(self.settings, [params.resource] if params.resource else [])
        except OAuthError as exc:
            raise AuthorizeError(error=exc.error, error_description=exc.description) from None  # type: ignore[arg-type]
        start = consent.new_pending(
            self.settings, record, str(params.redirect_uri), params.redirect_uri_provided_explicitly,
            scopes, params.code_challenge, resource, params.state, self.now(), browser_secret=None,
        )
        await self.model.save_pending_authorization(start.pending)
        return start.consent_url

    async def load_authorization_code(
        self, client: OAuthClientInformationFull, authorization_code: str
    ) -> LoadedAuthorizationCode | None:
        record = await self.model.get_authorization_code(tokens.digest(authorization_code))
        if record is None or record.client_id != client.client_id:
            return None
        if record.consumed_at is not None:
            await self.model.revoke_grant(record.grant_id)  # RFC 9700 §4.5: replay
            return None
        return LoadedAuthorizationCode(
            code=authorization_code, scopes=list(record.scopes), expires_at=record.expires_at,
            client_id=record.client_id, code_challenge=record.code_challenge,
            redirect_uri=AnyUrl(record.redirect_uri),
            redirect_uri_provided_explicitly=record.redirect_uri_provided_explicitly,
            resource=record.resource, subject=record.subject, grant_id=record.grant_id,
        )

    async def exchange_authorization_code(
        self, client: OAuthClientInformationFull, authorization_code: LoadedAuthorizationCode
    ) -> OAuthToken:
        record_client = await self._client_record(client)
        now = self.now()
        try:
            record = await code_grant.consume(self.model, authorization_code.code, now)
            # The SDK's handler checked PKCE and redirect_uri on the loaded copy; the binding to
            # client, expiry and resource is checked again on the consumed record.
            explicit_uri = record.redirect_uri if record.redirect_uri_provided_explicitly else None
            code_grant.check_binding(record, record_client, now, explicit_uri, None)
            issuance = await code_grant.issue_for_code(self.model, self.settings, now, record_client, record)
        except OAuthError as exc:
            raise _token_error(exc) from None
        return _oauth_token(issuance, self.settings)

    async def load_refresh_token(
        self, client: OAuthClientInformationFull, refresh_token: str
    ) -> LoadedRefreshToken | None:
        record_client = await self.model.get_client(client.client_id)
        if record_client is None:
            return None
        try:
            record = await refresh_grant.load(self.model, record_client, refresh_token, self.now())
        except OAuthError:
            return None
        return LoadedRefreshToken(
            token=refresh_token, client_id=record.client_id, scopes=list(record.granted_scopes),
            expires_at=record.expires_at, resource=record.resource, subject=record.subject,
            grant_id=record.grant_id,
        )

    async def exchange_refresh_token(
        self, client: OAuthClientInformationFull, refresh_token: LoadedRefreshToken, scopes: list[str]
    ) -> OAuthToken:
        record_client = await self._client_record(client)
        now = self.now()
        try:
            record = await refresh_grant.load(self.model, record_client, refresh_token.token, now)
            narrowed = refresh_grant.narrow_scopes(record, tuple(scopes) or None)
            issuance = await refresh_grant.rotate(self.model, self.settings, now, record_client, record, narrowed)
        except OAuthError as exc:
            raise _token_error(exc) from None
        return _oauth_token(issuance, self.settings)

    async def load_access_token(self, token: str) -> SDKAccessToken | None:
        record = await self.verify_access_token(token)
        return None if record is None else sdk_access_token(record, token, self.settings.issuer_url)

    async def revoke_token(self, token: SDKAccessToken | SDKRefreshToken) -> None:
        token_digest = tokens.digest(token.token)
        record = await self.model.get_access_token(token_digest) or await self.model.get_refresh_token(token_digest)
        if record is not None:
            await self.model.revoke_grant(record.grant_id)

    # -- TokenVerifier --------------------------------------------------------------------
    async def verify_token(self, token: str) -> SDKAccessToken | None:
        return await self.load_access_token(token)
