"""Peer: the MCP Python SDK's own auth routes with a minimal in-memory provider.

``create_auth_routes`` serves metadata, /authorize, /token, /register and /revoke;
``create_protected_resource_routes`` the RFC 9728 document; ``BearerAuthBackend`` +
``AuthContextMiddleware`` + ``RequireAuthMiddleware`` guard a small JSON endpoint, wired exactly as
``mcp.server.lowlevel.Server.streamable_http_app`` wires them (with token audience validation on,
as ours and mcp-oauth-server validate it).

The provider is the shape of the SDK's examples: ``authorize()`` returns the client's redirect
with a code at once (no consent page), and tokens are kept in dictionaries by their plaintext.

Usage: python -m bench.apps.sdk --port 8000
"""

from __future__ import annotations

import argparse
import secrets
import time

from mcp.server.auth.middleware.auth_context import AuthContextMiddleware
from mcp.server.auth.middleware.bearer_auth import BearerAuthBackend, RequireAuthMiddleware
from mcp.server.auth.provider import (
    AccessToken,
    AuthorizationCode,
    AuthorizationParams,
    OAuthAuthorizationServerProvider,
    ProviderTokenVerifier,
    RefreshToken,
    TokenError,
    construct_redirect_uri,
)
from mcp.server.auth.routes import build_resource_metadata_url, create_auth_routes, create_protected_resource_routes
from mcp.server.auth.settings import ClientRegistrationOptions, RevocationOptions
from mcp.shared.auth import OAuthClientInformationFull, OAuthToken
from pydantic import AnyHttpUrl
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.authentication import AuthenticationMiddleware
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from bench.apps import serve

USER = "bench-user"
SCOPES = ["mcp:tools"]
ACCESS_LIFETIME = 3600
CODE_LIFETIME = 300


class MemoryProvider(OAuthAuthorizationServerProvider[AuthorizationCode, RefreshToken, AccessToken]):
    """``OAuthAuthorizationServerProvider`` in dictionaries, as small as the Protocol allows."""

    def __init__(self) -> None:
        self.clients: dict[str, OAuthClientInformationFull] = {}
        self.codes: dict[str, AuthorizationCode] = {}
        self.access_tokens: dict[str, AccessToken] = {}
        self.refresh_tokens: dict[str, RefreshToken] = {}

    async def get_client(self, client_id: str) -> OAuthClientInformationFull | None:
        return self.clients.get(client_id)

    async def register_client(self, client_info: OAuthClientInformationFull) -> None:
        assert client_info.client_id is not None
        self.clients[client_info.client_id] = client_info

    async def authorize(self, client: OAuthClientInformationFull, params: AuthorizationParams) -> str:
        assert client.client_id is not None
        code = secrets.token_urlsafe(32)
        self.codes[code] = AuthorizationCode(
            code=code, scopes=params.scopes or SCOPES, expires_at=time.time() + CODE_LIFETIME,
            client_id=client.client_id, code_challenge=params.code_challenge, redirect_uri=params.redirect_uri,
            redirect_uri_provided_explicitly=params.redirect_uri_provided_explicitly, resource=params.resource,
            subject=USER,
        )
        return construct_redirect_uri(str(params.redirect_uri), code=code, state=params.state)

    async def load_authorization_code(self, client: OAuthClientInformationFull, code: str) -> AuthorizationCode | None:
        record = self.codes.get(code)
        return record if record is not None and record.client_id == client.client_id else None

    async def exchange_authorization_code(
        self, client: OAuthClientInformationFull, code: AuthorizationCode
    ) -> OAuthToken:
        if self.codes.pop(code.code, None) is None:
            raise TokenError("invalid_grant", "authorization code already used")
        return self._issue(code.client_id, code.scopes, code.resource, code.subject)

    async def load_refresh_token(self, client: OAuthClientInformationFull, refresh_token: str) -> RefreshToken | None:
        record = self.refresh_tokens.get(refresh_token)
        return record if record is not None and record.client_id == client.client_id else None

    async def exchange_refresh_token(
        self, client: OAuthClientInformationFull, refresh_token: RefreshToken, scopes: list[str]
    ) -> OAuthToken:
        if self.refresh_tokens.pop(refresh_token.token, None) is None:
            raise TokenError("invalid_grant", "refresh token already used")
        return self._issue(refresh_token.client_id, scopes, refresh_token.resource, refresh_token.subject)

    async def load_access_token(self, token: str) -> AccessToken | None:
        return self.access_tokens.get(token)

    async def revoke_token(self, token: AccessToken | RefreshToken) -> None:
        self.access_tokens.pop(token.token, None)
        self.refresh_tokens.pop(token.token, None)

    def _issue(self, client_id: str, scopes: list[str], resource: str | None, subject: str | None) -> OAuthToken:
        access, refresh = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        expires = int(time.time()) + ACCESS_LIFETIME
        self.access_tokens[access] = AccessToken(
            token=access, client_id=client_id, scopes=scopes, expires_at=expires, resource=resource, subject=subject,
        )
        self.refresh_tokens[refresh] = RefreshToken(
            token=refresh, client_id=client_id, scopes=scopes, resource=resource, subject=subject,
        )
        return OAuthToken(access_token=access, expires_in=ACCESS_LIFETIME, scope=" ".join(scopes),
                          refresh_token=refresh)


async def protected_json(scope: Scope, receive: Receive, send: Send) -> None:
    user = scope["user"]
    response = JSONResponse({"subject": user.access_token.subject, "scopes": list(user.scopes)})
    await response(scope, receive, send)


def build_app(base_url: str) -> Starlette:
    provider = MemoryProvider()
    issuer = AnyHttpUrl(base_url)
    resource = AnyHttpUrl(f"{base_url}/mcp")
    routes = create_auth_routes(
        provider, issuer,
        client_registration_options=ClientRegistrationOptions(enabled=True, valid_scopes=SCOPES, default_scopes=SCOPES),
        revocation_options=RevocationOptions(enabled=True),
    )
    routes.extend(create_protected_resource_routes(resource, [issuer], scopes_supported=SCOPES))
    guarded = RequireAuthMiddleware(protected_json, SCOPES, build_resource_metadata_url(resource))
    routes.append(Route("/mcp", endpoint=guarded, methods=["POST"]))
    middleware = [
        Middleware(AuthenticationMiddleware,
                   backend=BearerAuthBackend(ProviderTokenVerifier(provider), resource_server_url=resource)),
        Middleware(AuthContextMiddleware),
    ]
    return Starlette(routes=routes, middleware=middleware)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    serve(build_app(f"http://127.0.0.1:{args.port}"), args.port)


if __name__ == "__main__":
    main()
