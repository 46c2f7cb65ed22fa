"""Bearer token checks for the MCP endpoint (RFC 6750, RFC 9728 §5.1, MCP authorization spec).

Two forms share one check: ``require_bearer_auth`` is a FastAPI dependency for routes, and
``BearerAuthMiddleware`` wraps an ASGI app (the MCP SDK's streamable HTTP app). Failures answer
401 with ``WWW-Authenticate: Bearer resource_metadata="...", scope="..."`` (plus
``error="invalid_token"`` when a token was sent) or 403 ``insufficient_scope``.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass

from fastapi import HTTPException
from mcp.server.auth.middleware.auth_context import AuthContextMiddleware
from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from starlette.authentication import AuthCredentials
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from oauth_server.errors import StorageUnavailable
from oauth_server.integrations.mcp_sdk import sdk_access_token
from oauth_server.records import AccessToken
from oauth_server.server import AuthorizationServer
from oauth_server.web.endpoints.metadata import protected_resource_metadata_url


@dataclass(frozen=True, slots=True)
class BearerFailure(Exception):
    status_code: int
    error: str | None
    description: str
    www_authenticate: str


class BearerAuth:
    """The check itself: find the token in the header, verify it, compare scopes."""

    def __init__(
        self, server: AuthorizationServer, required_scopes: Iterable[str] = (), resource: str | None = None
    ) -> None:
        self.server = server
        self.required_scopes = tuple(required_scopes)
        self.resource = resource or server.settings.resource_server_url
        self.metadata_url = protected_resource_metadata_url(self.resource)

    def challenge(self, error: str | None = None, description: str | None = None) -> str:
        parts = [f'resource_metadata="{self.metadata_url}"']
        if self.required_scopes:
            parts.append(f'scope="{" ".join(self.required_scopes)}"')
        if error:
            parts.insert(0, f'error="{error}"')
            if description:
                parts.insert(1, f'error_description="{description}"')
        return "Bearer " + ", ".join(parts)

    def _fail(self, status: int, error: str | None, description: str) -> BearerFailure:
        return BearerFailure(status, error, description, self.challenge(error, description if error else None))

    async def check(self, headers: Mapping[str, str], query_string: bytes) -> AccessToken:
        header = headers.get("authorization")
        if header is None:
            # OAuth 2.1 §5.1.1 / MCP: tokens in the query string are never accepted.
            if b"access_token=" in query_string:
                raise self._fail(401, "invalid_request", "send the access token in the Authorization header")
            raise self._fail(401, None, "authentication required")
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise self._fail(401, "invalid_request", "the Authorization header must be 'Bearer <token>'")
        try:
            record = await self.server.verify_access_token(value.strip())
        except StorageUnavailable:
            # The token may be fine: say "try again", never "invalid_token" (which would make
            # clients throw the token away and send the user through consent again).
            raise BearerFailure(503, "temporarily_unavailable", "token storage is unavailable; retry later",
                                'Bearer error="temporarily_unavailable"') from None
        if record is None or record.resource != self.resource:
            raise self._fail(401, "invalid_token", "the access token is invalid, expired or for another resource")
        missing = [s for s in self.required_scopes if s not in record.scopes]
        if missing:
            raise self._fail(403, "insufficient_scope", f"requires scope: {' '.join(self.required_scopes)}")
        return record


def require_bearer_auth(
    server: AuthorizationServer, required_scopes: Iterable[str] = (), resource: str | None = None
) -> Callable[[Request], Awaitable[AccessToken]]:
    """A FastAPI dependency returning the verified ``AccessToken`` record.

    ``@app.post("/mcp/tool") async def tool(token = Depends(require_bearer_auth(server, ["mcp:tools"])))``
    """
    auth = BearerAuth(server, required_scopes, resource)

    async def bearer_token(request: Request) -> AccessToken:
        try:
            return await auth.check(request.headers, request.scope.get("query_string", b""))
        except BearerFailure as failure:
            raise HTTPException(
                failure.status_code,
                detail={"error": failure.error or "invalid_token", "error_description": failure.description},
                headers={"WWW-Authenticate": failure.www_authenticate},
            ) from None

    return bearer_token


class BearerAuthMiddleware:
    """Wrap an ASGI app (e.g. ``MCPServer.streamable_http_app()``) so every request needs a token.

    On success the request scope carries the SDK's ``AuthenticatedUser``, so MCP tools can call
    ``mcp.server.auth.middleware.auth_context.get_access_token()`` to see who is calling.
    """

    def __init__(
        self,
        app: ASGIApp,
        server: AuthorizationServer,
        required_scopes: Iterable[str] = (),
        resource: str | None = None,
    ) -> None:
        self.app = AuthContextMiddleware(app)
        self.auth = BearerAuth(server, required_scopes, resource)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        try:
            record = await self.auth.check(request.headers, scope.get("query_string", b""))
        except BearerFailure as failure:
            await _send_failure(send, failure)
            return
        token = request.headers["authorization"].partition(" ")[2].strip()
        scope["user"] = AuthenticatedUser(sdk_access_token(record, token, self.auth.server.settings.issuer_url))
        scope["auth"] = AuthCredentials(list(record.scopes))
        await self.app(scope, receive, send)


async def _send_failure(send: Send, failure: BearerFailure) -> None:
    body = json.dumps({"error": failure.error or "invalid_token", "error_description": failure.description}).encode()
    await send({"type": "http.response.start", "status": failure.status_code, "headers": [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"www-authenticate", failure.www_authenticate.encode()),
        (b"cache-control", b"no-store"),
    ]})
    await send({"type": "http.response.body", "body": body})
