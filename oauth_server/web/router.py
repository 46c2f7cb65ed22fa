"""``mcp_auth_router``: every endpoint of the authorization server as one FastAPI router."""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from oauth_server.errors import InvalidRequest, OAuthError, PayloadTooLarge
from oauth_server.server import AuthorizationServer
from oauth_server.web import cors
from oauth_server.web.context import MAX_BODY_BYTES, GetUser, RouterContext, UserScopes
from oauth_server.web.endpoints import (
    authorize,
    client_management,
    connected_apps,
    consent,
    device,
    introspect,
    jwks,
    metadata,
    register,
    revoke,
    token,
)
from oauth_server.web.errors import OAuthRoute, error_response
from oauth_server.web.limits import RateLimits
from oauth_server.web.templating import Templates

logger = logging.getLogger("oauth_server")

CORS_PATHS = ("register", "token", "revoke")
ALLOW_ANY_ORIGIN = (b"access-control-allow-origin", b"*")


class _OAuthRouterRoute(OAuthRoute):
    """Adds CORS to the fetch endpoints; refuses oversized bodies and NUL bytes before parsing."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        # RFC 7592 client configuration endpoints (/register/{client_id}) are fetched like /register.
        cors_enabled = (self.path.rsplit("/", 1)[-1] in CORS_PATHS or "/.well-known/" in self.path
                        or "/register/" in self.path)

        async def route(request: Request) -> Response:
            problem = await _screen(request)
            response = error_response(problem) if problem is not None else await handler(request)
            if cors_enabled and all(name != ALLOW_ANY_ORIGIN[0] for name, _ in response.raw_headers):
                response.raw_headers.append(ALLOW_ANY_ORIGIN)  # cheaper than MutableHeaders' rebuild
            return response

        return route


async def _screen(request: Request) -> OAuthError | None:
    """Read the body with a hard cap (also for chunked requests) and refuse NUL bytes anywhere.

    A NUL never occurs in a legitimate OAuth request and some databases refuse it in text.
    """
    if _has_nul(request.scope.get("query_string", b"")):
        return InvalidRequest("parameters must not contain NUL bytes")
    if request.method not in ("POST", "PUT", "PATCH"):
        return None
    length = request.headers.get("content-length")
    if length is not None and (not length.isdigit() or int(length) > MAX_BODY_BYTES):
        return PayloadTooLarge("the request body is larger than 64 KiB")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY_BYTES:
            return PayloadTooLarge("the request body is larger than 64 KiB")
    request._body = bytes(body)  # Starlette serves form()/json() from this cached body
    if _has_nul(body):
        return InvalidRequest("parameters must not contain NUL bytes")
    return None


def _has_nul(raw: bytes | bytearray) -> bool:
    return b"\x00" in raw or b"%00" in raw or b"\\u0000" in raw


def mcp_auth_router(
    server: AuthorizationServer,
    *,
    get_user: GetUser | None = None,
    user_scopes: UserScopes | None = None,
    templates_directory: str | Path | None = None,
    consent_path: str | None = None,
    rate_limits: RateLimits | None = None,
) -> APIRouter:
    """Build the router. Mount it with ``app.include_router(mcp_auth_router(server, ...))``.

    Args:
        server: the ``AuthorizationServer`` (or ``OAuthServer``) holding the rules and the model.
        get_user: ``(request) -> subject | None``, plain or async: who is signed in (the app decides).
            Given, the router also serves the user's connected apps at ``{issuer path}/connected-apps``.
        user_scopes: ``(subject) -> scopes | None``, plain or async: which scopes that user may
            grant; None: all.
        templates_directory: the app's templates; ``oauth_server/consent.html`` (or
            ``connected_apps.html``, ``sign_in.html``, ``error.html``) there overrides ours.
        consent_path: where the consent page and its confirm handler live; defaults to the path
            of ``authorization_url``.
        rate_limits: ``RateLimits(...)``; default: ``DEFAULT_LIMITS`` in memory. ``RateLimits.disabled()``
            turns them off (benchmarks).
    """
    ctx = _context(server, get_user, user_scopes, templates_directory, consent_path, rate_limits)
    router = APIRouter(route_class=_OAuthRouterRoute)
    # Busiest first: FastAPI tries a router's routes in order, twice per request (it matches,
    # then matches again to dispatch), so /token as the 18th route cost 36 route matches per
    # request, a fifth of a refresh's CPU. No two of these routes share a path and a method, so
    # the order changes nothing else.
    token.add_routes(router, ctx)
    authorize.add_routes(router, ctx)
    consent.add_routes(router, ctx)
    register.add_routes(router, ctx)
    metadata.add_routes(router, ctx)
    client_management.add_routes(router, ctx)
    device.add_routes(router, ctx)
    connected_apps.add_routes(router, ctx)
    revoke.add_routes(router, ctx)
    introspect.add_routes(router, ctx)
    jwks.add_routes(router, ctx)
    cors.add_method_not_allowed(router, ctx.path("authorize"), "GET, HEAD, POST")
    cors.add_method_not_allowed(router, ctx.consent_path, "GET, HEAD, POST")
    if server.settings.device_authorization_grant:
        cors.add_method_not_allowed(router, ctx.path("device"), "GET, HEAD, POST")
    if get_user is not None:
        cors.add_method_not_allowed(router, connected_apps.path(ctx), "GET, HEAD, POST")
    for name in CORS_PATHS:
        cors.add_preflight(router, ctx.path(name), "POST")
    cors.add_preflight(router, f"/.well-known/oauth-authorization-server{ctx.base_path}", "GET")
    for path in metadata.openid_configuration_paths(ctx):
        cors.add_preflight(router, path, "GET")
    if server.signing is not None:
        cors.add_preflight(router, jwks.jwks_path(ctx), "GET")
    for resource in server.settings.resources:
        cors.add_preflight(router, metadata.protected_resource_metadata_path(resource), "GET")
    return router


def consent_router(
    server: AuthorizationServer,
    *,
    get_user: GetUser | None = None,
    user_scopes: UserScopes | None = None,
    templates_directory: str | Path | None = None,
    consent_path: str | None = None,
    rate_limits: RateLimits | None = None,
) -> APIRouter:
    """Only the consent page and its confirm handler (and, given ``get_user``, the connected-apps
    page), for apps that serve the other endpoints with the MCP SDK's own
    ``create_auth_routes`` / ``MCPServer(auth_server_provider=server)``."""
    ctx = _context(server, get_user, user_scopes, templates_directory, consent_path, rate_limits)
    router = APIRouter(route_class=_OAuthRouterRoute)
    consent.add_routes(router, ctx)
    connected_apps.add_routes(router, ctx)
    return router


def _context(
    server: AuthorizationServer,
    get_user: GetUser | None,
    user_scopes: UserScopes | None,
    templates_directory: str | Path | None,
    consent_path: str | None,
    rate_limits: RateLimits | None,
) -> RouterContext:
    if get_user is None:
        logger.warning("no get_user given: nobody can approve a consent request")
    path = consent_path or urlsplit(server.settings.authorization_url).path or "/consent"
    limits = rate_limits if rate_limits is not None else RateLimits()
    return RouterContext(server, Templates(templates_directory), get_user, user_scopes, path, limits)
