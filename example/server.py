"""The example server: ``python -m example.server``.

One FastAPI app holds both roles a small deployment needs: the authorization server
(``mcp_auth_router``: metadata, registration, authorize, the sign-in + consent page, token,
revoke) and the MCP server it protects (the MCP SDK's ``MCPServer`` over streamable HTTP at
exactly ``/mcp``, behind ``BearerAuthMiddleware``; every other unknown path is a plain 404).
Settings come from the environment, see ``example.settings.ExampleSettings.from_env``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit

import uvicorn
from fastapi import FastAPI
from mcp.server.transport_security import TransportSecuritySettings
from starlette.routing import Route

from example.database import make_model, prepare_database
from example.settings import ExampleSettings
from example.tools import build_mcp_server
from example.users import ALL_SCOPES, UserStore
from oauth_server import BearerAuthMiddleware, OAuthServer, OAuthServerSettings, RateLimits, mcp_auth_router

logger = logging.getLogger("example")

TEMPLATES = Path(__file__).resolve().parent / "templates"


def transport_security(settings: ExampleSettings) -> TransportSecuritySettings:
    """DNS rebinding protection for the MCP endpoint that also accepts the public host name.

    The SDK's default for a local server allows only localhost hosts, which would refuse every
    request once the example runs behind a real ``PUBLIC_URL``.
    """
    public = urlsplit(settings.public_url)
    origin = f"{public.scheme}://{public.netloc}"
    return TransportSecuritySettings(
        allowed_hosts=["127.0.0.1:*", "localhost:*", "[::1]:*", public.netloc, f"{settings.host}:{settings.port}"],
        allowed_origins=["http://127.0.0.1:*", "http://localhost:*", "http://[::1]:*", origin],
    )


async def purge_periodically(server: OAuthServer, interval: float) -> None:
    """Delete expired codes, tokens and pending requests every ``interval`` seconds.

    Expired records are refused anyway; purging only keeps the tables small. A failed sweep
    is logged and retried at the next interval rather than stopping the loop.
    """
    while True:
        await asyncio.sleep(interval)
        try:
            purged = await server.purge_expired()
        except Exception:
            logger.exception("purging expired records failed")
        else:
            if purged:
                logger.info("purged %d expired records", purged)


def create_app(settings: ExampleSettings) -> FastAPI:
    """The whole example as an ASGI app (the tests run it under uvicorn on a free port)."""
    model = make_model(settings.database_url)
    server = OAuthServer(model, OAuthServerSettings(
        issuer_url=settings.issuer_url,
        resource_server_url=settings.resource_url,
        authorization_url=f"{settings.public_url}/consent",
        scopes_supported=ALL_SCOPES,
        # A client that asks for nothing gets the basic scope, not every scope there is.
        default_scopes=("mcp:tools",),
        access_token_lifetime=settings.access_token_lifetime,
        resource_name="oauth_server example MCP server",
    ))
    users = UserStore.demo(settings.demo_username, settings.demo_password)
    mcp = build_mcp_server()
    mcp_app = mcp.streamable_http_app(streamable_http_path="/mcp", transport_security=transport_security(settings))

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await prepare_database(model, settings.database_url)
        purge = asyncio.create_task(purge_periodically(server, settings.purge_interval))
        try:
            async with mcp.session_manager.run():
                yield
        finally:
            purge.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await purge
            await model.close()

    app = FastAPI(title="oauth_server example", lifespan=lifespan)

    @app.get("/health", tags=["example"])
    async def health() -> dict[str, str]:
        """Liveness probe for load balancers and the tests; needs no token."""
        return {"status": "ok"}

    app.include_router(mcp_auth_router(
        server,
        get_user=users.get_user,
        user_scopes=users.user_scopes,
        templates_directory=TEMPLATES,
        rate_limits=RateLimits() if settings.rate_limit else RateLimits.disabled(),
    ))
    # Only the MCP endpoint needs a token; any other unknown path is a 404, not a Bearer
    # challenge for a resource that does not exist. A route (not a mount) leaves the path the
    # MCP app sees at /mcp, where its own route is, and takes every method without a redirect:
    # SDK clients use exactly the resource URL {PUBLIC_URL}/mcp, the identifier RFC 9728 §3.3
    # compares as it is. /mcp/ is another URL and gets the app-wide trailing-slash redirect.
    app.router.routes.append(Route("/mcp", BearerAuthMiddleware(mcp_app, server, ["mcp:tools"])))
    app.state.oauth_server = server
    app.state.settings = settings
    return app


def startup_banner(settings: ExampleSettings) -> str:
    """What ``main`` prints at start: where to connect and who may sign in.

    The demo password is shown only while it is the built-in default, which the README prints
    anyway; a password the operator chose with ``DEMO_PASSWORD`` is a secret and stays out of
    the terminal and of whatever collects its output (design.md: never log a credential).
    """
    if settings.demo_password == ExampleSettings().demo_password:
        admin = f"{settings.demo_username}/{settings.demo_password}"
    else:
        admin = f"{settings.demo_username} (password from DEMO_PASSWORD)"
    return "\n".join([
        f"Listening on http://{settings.host}:{settings.port}",
        f"Issuer: {settings.issuer_url}   MCP endpoint: {settings.resource_url}",
        f"Demo users: {admin} (admin), guest/guest (guest)",
    ])


def main() -> None:
    settings = ExampleSettings.from_env()
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # alembic announces each of its plugins at INFO; the migrations it runs are worth seeing, those are not.
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)
    app = create_app(settings)
    print(startup_banner(settings), flush=True)
    uvicorn.run(app, host=settings.host, port=settings.port, log_level=settings.log_level.lower(),
                access_log=settings.access_log)


if __name__ == "__main__":
    main()
