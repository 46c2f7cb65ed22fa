"""The example as a resource server only: ``AUTH_ISSUER=https://auth.example python -m example.server``.

The split deployment: the authorization server runs elsewhere (another copy of the example with
``ACCESS_TOKEN_FORMAT=jwt``, or any issuer with RFC 8414 metadata and a ``jwks_uri``), and this
process serves the same MCP server, checking each token locally against that issuer's JWKS
(RFC 9068 §4). It has no authorization server routes, no database and no consent page; its
protected resource metadata (RFC 9728 §2 ``authorization_servers``) sends clients to the issuer.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from fastapi import FastAPI

from example.mcp_endpoint import mcp_route
from example.settings import ExampleSettings
from example.users import ALL_SCOPES
from oauth_server import IssuerConfig, ResourceServer, protected_resource_router


def make_resource_server(settings: ExampleSettings) -> ResourceServer:
    """Trust ``AUTH_ISSUER`` for tokens whose audience is this process's ``/mcp``.

    The issuer's metadata is found by the RFC 8414 §3.1 rule on first use and must name exactly
    that issuer (§3.3). Fetches go through the library's guarded fetcher, which never reaches
    loopback addresses unless ``AUTH_ALLOW_LOOPBACK=on`` (then plain http is allowed to them).
    """
    issuer = settings.auth_issuer
    if issuer is None:
        raise ValueError("resource-server mode needs AUTH_ISSUER")
    config = IssuerConfig(issuer, jwks_refetch_interval=settings.auth_jwks_refetch_interval)
    return ResourceServer(settings.resource_url, [config], allow_loopback=settings.auth_allow_loopback)


def create_resource_server_app(settings: ExampleSettings) -> FastAPI:
    """The MCP server at ``/mcp`` behind ``BearerAuthMiddleware``, its RFC 9728 metadata, ``/health``."""
    verifier = make_resource_server(settings)
    mcp, route = mcp_route(settings, verifier)

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        try:
            async with mcp.session_manager.run():
                yield
        finally:
            await verifier.aclose()

    app = FastAPI(title="oauth_server example (resource server)", lifespan=lifespan)

    @app.get("/health", tags=["example"])
    async def health() -> dict[str, str]:
        """Liveness probe for load balancers and the tests; needs no token."""
        return {"status": "ok"}

    app.include_router(protected_resource_router(
        settings.resource_url, verifier.authorization_servers, ALL_SCOPES,
        resource_name="oauth_server example MCP server"))
    app.router.routes.append(route)
    app.state.resource_server = verifier
    app.state.settings = settings
    return app
