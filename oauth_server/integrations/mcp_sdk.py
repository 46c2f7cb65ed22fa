"""``OAuthServer``: our rules (``AuthorizationServer``) plus the MCP SDK's provider interface.

The user's design card: an ``OAuthServer`` object implements the MCP SDK's
``OAuthAuthorizationServerProvider`` and ``TokenVerifier`` on top of an abstract
``OAuthServerModel``, so it can be handed to ``MCPServer(auth_server_provider=...)``. Those
Protocol methods speak the SDK's vocabulary (pydantic models, ``load_*``/``exchange_*``); each
one below says which of our methods or rules it maps to. Our router (``mcp_auth_router``) calls
only our own vocabulary.

The SDK splits a token exchange into ``load_*`` (its handler then checks expiry, redirect URI
and PKCE) and ``exchange_*``. Consumption stays atomic: ``exchange_authorization_code``
consumes the code in one model call, and a code or refresh token that was already used
revokes its grant, as through our router.

Limitation: the SDK's client authenticator compares a stored plaintext secret, and we store
only digests, so through the SDK's routes only public clients (``token_endpoint_auth_method:
none``) can authenticate. Our router supports every method.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from mcp.server.auth.provider import AccessToken as SDKAccessToken
from mcp.server.auth.provider import AuthorizationCode as SDKAuthorizationCode
from mcp.server.auth.provider import (
    AuthorizationParams,
    AuthorizeError,
    IdentityAssertionParams,
    RegistrationError,
    TokenError,
)
from mcp.server.auth.provider import RefreshToken as SDKRefreshToken
from mcp.shared.auth import OAuthClientInformationFull, OAuthToken
from pydantic import AnyUrl

from oauth_server import clients, consent, tokens
from oauth_server.audit import build as audit_events
from oauth_server.audit.events import CodeReplayDetected, digest_ref
from oauth_server.errors import OAuthError
from oauth_server.grants import authorization_code as code_grant
from oauth_server.grants import refresh_token as refresh_grant
from oauth_server.grants.issue import GrantContext, Issuance
from oauth_server.records import Client
from oauth_server.resource.local import verified_token
from oauth_server.resource.verified import VerifiedToken
from oauth_server.resources import canonical_resource
from oauth_server.server import AuthorizationServer

#: The error codes the SDK's ``TokenError`` accepts; anything else is sent as invalid_request.
_TOKEN_ERRORS = frozenset({"invalid_request", "invalid_client", "invalid_grant", "unauthorized_client",
                           "unsupported_grant_type", "invalid_scope", "invalid_target"})


class LoadedAuthorizationCode(SDKAuthorizationCode):
    """The SDK's code record plus the grant it belongs to."""

    grant_id: str


class LoadedRefreshToken(SDKRefreshToken):
    """The SDK's refresh token record plus the grant it belongs to."""

    grant_id: str


def sdk_client(client: Client) -> OAuthClientInformationFull:
    """Our ``Client`` record as the SDK's client information model (no secret: we keep digests only)."""
    info = clients.client_information(client)
    info["client_secret_expires_at"] = client.client_secret_expires_at
    return OAuthClientInformationFull.model_validate(info)


def sdk_access_token(record: VerifiedToken, token: str) -> SDKAccessToken:
    """A ``VerifiedToken`` as the SDK's ``AccessToken``, for ``get_access_token()`` inside MCP tools.

    The SDK requires a client id; a token that names none (some issuers' user tokens) is
    attributed to its subject. ``claims`` keeps ``iss``, which the SDK's ``principal_components``
    reads to tell principals of different issuers apart. Built without pydantic's validation
    (``model_construct``): every value comes typed from a verified record, on every MCP request.
    """
    return SDKAccessToken.model_construct(
        token=token,
        client_id=record.client_id or record.subject,
        scopes=list(record.scopes),
        expires_at=record.expires_at,
        resource=record.audience[0] if record.audience else None,
        subject=record.subject,
        claims={**record.claims, "iss": record.issuer},
    )


def _token_error(exc: OAuthError) -> TokenError:
    code = exc.error if exc.error in _TOKEN_ERRORS else "invalid_request"
    return TokenError(error=code, error_description=exc.description)  # type: ignore[arg-type]


def _oauth_token(issuance: Issuance, server: AuthorizationServer) -> OAuthToken:
    return OAuthToken.model_validate(issuance.response(server.settings))


class OAuthServer(AuthorizationServer):
    """``AuthorizationServer`` that is also the MCP SDK's ``OAuthAuthorizationServerProvider``
    and ``TokenVerifier``. Construct it exactly like ``AuthorizationServer``."""

    async def _record(self, client_id: str) -> Client | None:
        """Our client record, a metadata document URL included (``AuthorizationServer._client``);
        an unusable document is an unknown client to the SDK, which has no other answer for it."""
        try:
            return await self._client(client_id)
        except OAuthError:
            return None

    async def _grant_context_for(self, client: OAuthClientInformationFull) -> GrantContext:
        record = await self._record(client.client_id)
        if record is None:
            raise TokenError(error="invalid_client", error_description="unknown client")
        return await self._grant_context(record)

    # -- OAuthAuthorizationServerProvider --------------------------------------------------
    async def get_client(self, client_id: str) -> OAuthClientInformationFull | None:
        """The SDK's client lookup: our client lookup (``_client``), converted by ``sdk_client``."""
        record = await self._record(client_id)
        return None if record is None else sdk_client(record)

    async def register_client(self, client_info: OAuthClientInformationFull) -> None:
        """The SDK's registration: our ``register`` rules (``clients.build_client``), keeping the
        client id and secret the SDK generated (only the secret's digest is stored)."""
        metadata: dict[str, Any] = client_info.model_dump(mode="json", exclude_none=True)
        try:
            record, _ = clients.build_client(metadata, self.settings, self.now(), client_id=client_info.client_id,
                                             allow_client_credentials=self.settings.dcr_client_credentials)
        except OAuthError as exc:
            code = "invalid_redirect_uri" if exc.error == "invalid_redirect_uri" else "invalid_client_metadata"
            raise RegistrationError(error=code, error_description=exc.description) from None  # type: ignore[arg-type]
        if client_info.client_secret:
            record = dataclasses.replace(
                record,
                client_secret_digest=tokens.digest(client_info.client_secret),
                client_secret_expires_at=client_info.client_secret_expires_at or 0,
            )
        await self.model.save_client(record)
        await self.audit.emit(audit_events.client_registered(record, self.now()))

    async def authorize(self, client: OAuthClientInformationFull, params: AuthorizationParams) -> str:
        """The SDK's /authorize (after it validated the request): our ``start_authorization``'s
        scope and resource rules, then a pending request that the first browser to open the
        consent page claims (``open_consent``). Returns the consent page URL."""
        record = await self._record(client.client_id)
        if record is None:
            raise AuthorizeError(error="unauthorized_client", error_description="unknown client")
        try:
            scopes = consent.requested_scopes(self.settings, record, " ".join(params.scopes or []) or None)
            resource = canonical_resource(self.settings, [params.resource] if params.resource else [])
        except OAuthError as exc:
            raise AuthorizeError(error=exc.error, error_description=exc.description) from None  # type: ignore[arg-type]
        redirect = consent.TrustedRedirect(record, str(params.redirect_uri), params.redirect_uri_provided_explicitly)
        request = consent.AuthorizationRequest(redirect, scopes, params.code_challenge, resource, params.state)
        start = await self.save_pending(request, browser_secret=None)
        return start.consent_url

    async def load_authorization_code(
        self, client: OAuthClientInformationFull, authorization_code: str
    ) -> LoadedAuthorizationCode | None:
        """The SDK reads the code before exchanging it: ``model.get_authorization_code``; a code
        already consumed is a replay and revokes its grant, as in ``authorization_code.consume``."""
        record = await self.model.get_authorization_code(tokens.digest(authorization_code))
        if record is None or record.client_id != client.client_id:
            return None
        if record.consumed_at is not None:
            await self.model.revoke_grant(record.grant_id, self.now())  # RFC 9700 §4.5: replay
            await self.audit.emit(CodeReplayDetected(
                time=self.now(), client_id=record.client_id, subject=record.subject, grant_id=record.grant_id,
                code_ref=digest_ref(record.code_digest), presented_by=client.client_id))
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
        """Our ``authorization_code`` grant: consume atomically, check the binding, issue."""
        ctx = await self._grant_context_for(client)
        try:
            record = await code_grant.consume(ctx.model, authorization_code.code, ctx.now, audit=ctx.audit,
                                              presented_by=client.client_id)
            # The SDK's handler checked PKCE and redirect_uri on the loaded copy; the binding to
            # client, expiry and resource is checked again on the consumed record.
            explicit_uri = record.redirect_uri if record.redirect_uri_provided_explicitly else None
            code_grant.check_binding(ctx, record, explicit_uri, None)
            issuance = await code_grant.issue_for_code(ctx, record)
        except OAuthError as exc:
            raise _token_error(exc) from None
        await self.audit.emit(audit_events.tokens_issued("authorization_code", issuance, ctx.now))
        return _oauth_token(issuance, self)

    async def load_refresh_token(
        self, client: OAuthClientInformationFull, refresh_token: str
    ) -> LoadedRefreshToken | None:
        """Our ``refresh_token.load`` (reuse of a rotated token revokes the grant)."""
        try:
            ctx = await self._grant_context_for(client)
            record = await refresh_grant.load(ctx, refresh_token)
        except (OAuthError, TokenError):
            return None
        return LoadedRefreshToken(
            token=refresh_token, client_id=record.client_id, scopes=list(record.granted_scopes),
            expires_at=record.expires_at, resource=record.resource, subject=record.subject,
            grant_id=record.grant_id,
        )

    async def exchange_refresh_token(
        self, client: OAuthClientInformationFull, refresh_token: LoadedRefreshToken, scopes: list[str]
    ) -> OAuthToken:
        """Our ``refresh_token`` grant: load again, narrow the scope, rotate atomically."""
        ctx = await self._grant_context_for(client)
        try:
            record = await refresh_grant.load(ctx, refresh_token.token)
            narrowed = refresh_grant.narrow_scopes(record, tuple(scopes) or None)
            issuance = await refresh_grant.rotate(ctx, record, narrowed)
        except OAuthError as exc:
            raise _token_error(exc) from None
        await self.audit.emit(audit_events.tokens_issued("refresh_token", issuance, ctx.now))
        return _oauth_token(issuance, self)

    async def load_access_token(self, token: str) -> SDKAccessToken | None:
        """Our ``verify_access_token``, converted by ``sdk_access_token``."""
        record = await self.verify_access_token(token)
        return None if record is None else sdk_access_token(verified_token(record, self.settings.issuer_url), token)

    async def revoke_token(self, token: SDKAccessToken | SDKRefreshToken) -> None:
        """The SDK's /revoke (after it authenticated the client): revokes the token's whole grant,
        as our ``revoke`` does."""
        token_digest = tokens.digest(token.token)
        record = await self.model.get_access_token(token_digest) or await self.model.get_refresh_token(token_digest)
        if record is not None:
            await self.model.revoke_grant(record.grant_id, self.now())
            await self.audit.emit(audit_events.token_revoked(record, self.now()))

    async def exchange_identity_assertion(
        self, client: OAuthClientInformationFull, params: IdentityAssertionParams
    ) -> OAuthToken:
        """The SDK's jwt-bearer (ID-JAG) grant: ``unsupported_grant_type`` (RFC 6749 §5.2)
        through the SDK's routes. Our grant needs a confidential client, and through the SDK's
        routes only public clients authenticate (it compares plaintext secrets; we keep digests),
        so ID-JAGs are accepted at ``mcp_auth_router``'s /token (``grants.jwt_bearer``) only."""
        raise TokenError(error="unsupported_grant_type",
                         error_description="the jwt-bearer grant is served by mcp_auth_router's token endpoint")

    # -- TokenVerifier --------------------------------------------------------------------
    async def verify_token(self, token: str) -> SDKAccessToken | None:
        """The SDK's ``TokenVerifier``: the same as ``load_access_token``."""
        return await self.load_access_token(token)
