"""Bearer token checks for the MCP endpoint (RFC 6750, RFC 9728 §5.1, MCP authorization spec).

Two forms share one check: ``require_bearer_auth`` is a FastAPI dependency for routes, and
``BearerAuthMiddleware`` wraps an ASGI app (the MCP SDK's streamable HTTP app). Both take our
own ``AuthorizationServer`` (checked through ``LocalVerifier``) or any ``TokenVerifier`` — a
``ResourceServer`` trusting authorization servers elsewhere. Failures answer 401 with
``WWW-Authenticate: Bearer resource_metadata="...", scope="..."`` (plus
``error="invalid_token"`` when a token was sent), 403 ``insufficient_scope`` naming what is
missing, or 503 ``temporarily_unavailable`` when the verifier cannot tell right now.
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

from oauth_server.integrations.mcp_sdk import sdk_access_token
from oauth_server.resource.local import LocalVerifier
from oauth_server.resource.verified import TokenVerifier, VerifiedToken, VerifierUnavailable
from oauth_server.server import AuthorizationServer
from oauth_server.web.endpoints.metadata import protected_resource_metadata_url

VerifierOrServer = TokenVerifier | AuthorizationServer


@dataclass(frozen=True, slots=True)
class BearerFailure(Exception):
    status_code: int
    error: str | None
    description: str
    www_authenticate: str


def token_verifier(verifier_or_server: VerifierOrServer, resource: str | None = None) -> TokenVerifier:
    """Our ``AuthorizationServer`` becomes a ``LocalVerifier``; a ``TokenVerifier`` is used as is
    (it knows its resource; a different ``resource`` here would be a configuration mistake)."""
    if isinstance(verifier_or_server, AuthorizationServer):
        return LocalVerifier(verifier_or_server, resource)
    if resource is not None and resource != verifier_or_server.resource:
        raise ValueError(f"resource {resource!r} differs from the verifier's {verifier_or_server.resource!r}")
    return verifier_or_server


class BearerAuth:
    """The check itself: find the token in the header, verify it, compare scopes and roles."""

    def __init__(
        self,
        verifier_or_server: VerifierOrServer,
        required_scopes: Iterable[str] = (),
        resource: str | None = None,
        required_roles: Iterable[str] = (),
    ) -> None:
        self.verifier = token_verifier(verifier_or_server, resource)
        self.required_scopes = tuple(required_scopes)
        self.required_roles = tuple(required_roles)
        self.resource = self.verifier.resource
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

    async def check(self, headers: Mapping[str, str], query_string: bytes) -> VerifiedToken:
        return await self.check_header(headers.get("authorization"), query_string)

    async def check_header(self, header: str | None, query_string: bytes) -> VerifiedToken:
        """The check itself, from the ``Authorization`` header's value (None: absent)."""
        if header is None:
            # OAuth 2.1 §5.1.1 / MCP: tokens in the query string are never accepted.
            if b"access_token=" in query_string:
                raise self._fail(401, "invalid_request", "send the access token in the Authorization header")
            raise self._fail(401, None, "authentication required")
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise self._fail(401, "invalid_request", "the Authorization header must be 'Bearer <token>'")
        try:
            record = await self.verifier.verify(value.strip())
        except VerifierUnavailable:
            # The token may be fine: say "try again", never "invalid_token" (which would make
            # clients throw the token away and send the user through consent again).
            raise BearerFailure(503, "temporarily_unavailable", "the token cannot be checked now; retry later",
                                'Bearer error="temporarily_unavailable"') from None
        if record is None:
            raise self._fail(401, "invalid_token", "the access token is invalid, expired or for another resource")
        missing = self._missing(record)
        if missing:
            # RFC 6750 §3.1: insufficient_scope, with the scope the request needs.
            raise self._fail(403, "insufficient_scope", "; ".join(missing))
        return record

    def _missing(self, record: VerifiedToken) -> list[str]:
        problems = []
        if any(scope not in record.scopes for scope in self.required_scopes):
            problems.append(f"requires scope: {' '.join(self.required_scopes)}")
        missing_roles = [role for role in self.required_roles if role not in record.roles]
        if missing_roles:
            problems.append(f"requires role: {' '.join(missing_roles)}")
        return problems


def require_bearer_auth(
    verifier_or_server: VerifierOrServer,
    required_scopes: Iterable[str] = (),
    resource: str | None = None,
    *,
    required_roles: Iterable[str] = (),
) -> Callable[[Request], Awaitable[VerifiedToken]]:
    """A FastAPI dependency returning the ``VerifiedToken``.

    ``@app.post("/mcp/tool") async def tool(token = Depends(require_bearer_auth(server, ["mcp:tools"])))``
    """
    auth = BearerAuth(verifier_or_server, required_scopes, resource, required_roles)

    async def bearer_token(request: Request) -> VerifiedToken:
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
        verifier_or_server: VerifierOrServer,
        required_scopes: Iterable[str] = (),
        resource: str | None = None,
        *,
        required_roles: Iterable[str] = (),
    ) -> None:
        self.app = AuthContextMiddleware(app)
        self.auth = BearerAuth(verifier_or_server, required_scopes, resource, required_roles)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        header = _authorization(scope)
        try:
            record = await self.auth.check_header(header, scope.get("query_string", b""))
        except BearerFailure as failure:
            await _send_failure(send, failure)
            return
        token = (header or "").partition(" ")[2].strip()
        scope["user"] = AuthenticatedUser(sdk_access_token(record, token))
        scope["auth"] = AuthCredentials(list(record.scopes))
        await self.app(scope, receive, send)


def _authorization(scope: Scope) -> str | None:
    """The ``Authorization`` header straight from the ASGI scope (names are lower-case there,
    ASGI 3 §http), without building a ``Request`` and its header map on every MCP request.
    Like Starlette's ``Headers.get``, the first of repeated headers counts."""
    for name, value in scope["headers"]:
        if name == b"authorization":
            return str(value.decode("latin-1"))
    return None


async def _send_failure(send: Send, failure: BearerFailure) -> None:
    body = json.dumps({"error": failure.error or "invalid_token", "error_description": failure.description}).encode()
    await send({"type": "http.response.start", "status": failure.status_code, "headers": [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"www-authenticate", failure.www_authenticate.encode()),
        (b"cache-control", b"no-store"),
    ]})
    await send({"type": "http.response.body", "body": body})
