"""The example server: ``python -m example.server``.

One FastAPI app holds both roles a small deployment needs: the authorization server
(``mcp_auth_router``: metadata, registration, authorize, the sign-in + consent page, the
connected-apps page, token, revoke, and with ``ACCESS_TOKEN_FORMAT=jwt`` the JWKS; a sign-in
lasts as a session cookie, ``example.sign_in``, with ``/account`` and ``/logout``) and the MCP
server it protects (the MCP SDK's ``MCPServer`` over streamable HTTP at exactly ``/mcp``,
behind ``BearerAuthMiddleware``; every other unknown path is a plain 404). With ``AUTH_ISSUER``
naming another issuer it is the MCP server alone, a resource server of that issuer
(``example.resource_server``). Settings come from the environment, see ``example.settings.ExampleSettings.from_env``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, TextIO

import uvicorn
from fastapi import FastAPI

from example.account import add_account_routes
from example.database import make_model, prepare_database
from example.mcp_endpoint import mcp_route
from example.resource_server import create_resource_server_app
from example.sessions import SessionCookies
from example.settings import ExampleSettings, SettingsError
from example.sign_in import LOGIN_LIMITS, SessionMiddleware, SignIn
from example.tuning import tune_garbage_collector
from example.users import ALL_SCOPES, UserStore
from oauth_server import OAuthServer, OAuthServerSettings, RateLimits, TrustedIdentityProvider, mcp_auth_router
from oauth_server.audit import AuditEvent, EventHook, SQLAuditSink
from oauth_server.keys import SigningKeyError
from oauth_server.web.limits import DEFAULT_LIMITS
from oauth_server.web.templating import Templates

logger = logging.getLogger("example")

TEMPLATES = Path(__file__).resolve().parent / "templates"


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


async def check_signing_keys(server: OAuthServer, settings: ExampleSettings) -> None:
    """Decrypt the stored signing keys once at start (building the JWKS does), so a
    ``KEY_ENCRYPTION_SECRET`` other than the one they were stored with stops the start instead
    of failing every token request later. A new secret cannot read the old keys: AES-GCM
    (``keys.KeyCipher``) authenticates each with the secret it was encrypted under."""
    if settings.access_token_format != "jwt":
        return
    try:
        await server.jwks()
    except SigningKeyError as exc:
        raise SettingsError(f"KEY_ENCRYPTION_SECRET cannot decrypt the signing keys stored in the database "
                            f"({exc}); start with the secret they were stored with") from None


def server_settings(settings: ExampleSettings) -> OAuthServerSettings:
    """The authorization server's settings: our own ``/mcp`` plus ``RESOURCE_URLS`` as resources,
    and for JWT access tokens either the app's key (``SIGNING_KEY_FILE``) or managed keys."""
    return OAuthServerSettings(
        issuer_url=settings.issuer_url,
        resource_server_url=settings.resource_url,
        extra_resources=settings.resource_urls,
        authorization_url=f"{settings.public_url}/consent",
        scopes_supported=ALL_SCOPES,
        # A client that asks for nothing gets the basic scope, not every scope there is.
        default_scopes=("mcp:tools",),
        access_token_lifetime=settings.access_token_lifetime,
        resource_name="oauth_server example MCP server",
        access_token_format=settings.access_token_format,
        signing_keys=settings.signing_keys(),
        key_encryption_secret=settings.key_encryption_secret,
        signing_key_propagation=settings.signing_key_propagation,
        client_id_metadata_documents=settings.cimd,
        cimd_allow_loopback=settings.cimd_allow_loopback,
        cimd_ca_bundle=str(Path(settings.cimd_ca_bundle).expanduser()) if settings.cimd_ca_bundle else None,
        dcr_client_credentials=settings.dcr_client_credentials,
        trusted_identity_providers=identity_providers(settings),
        device_authorization_grant=settings.device_flow,
        audit_retention=settings.audit_retention,
    )


def identity_providers(settings: ExampleSettings) -> tuple[TrustedIdentityProvider, ...]:
    """``IDJAG_ISSUER`` + ``IDJAG_JWKS_URI``: the one enterprise identity provider whose ID-JAGs
    the example accepts (none by default, and then the jwt-bearer grant is off)."""
    if settings.idjag_issuer is None or settings.idjag_jwks_uri is None:
        return ()
    return (TrustedIdentityProvider(settings.idjag_issuer, settings.idjag_jwks_uri,
                                    allow_loopback=settings.idjag_allow_loopback),)


class AuditLines:
    """``AUDIT_SQL=off``: each audit event as one bare JSON line on stderr, parseable alone.

    Written straight to the stream rather than through ``logging`` (the library's default hook,
    ``log_event``): the same line, without a ``LogRecord`` per event, which was 7 % of a refresh's
    CPU in the example (``bench/results/phase6-profile-example-sqlite.md``). ``stream`` None means
    ``sys.stderr`` as it is at each event.
    """

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream

    def __call__(self, event: AuditEvent) -> None:
        line = json.dumps(event.as_dict(), separators=(",", ":"), ensure_ascii=False)
        (self.stream or sys.stderr).write(line + "\n")


def create_app(settings: ExampleSettings) -> FastAPI:
    """The whole example as an ASGI app (the tests run it under uvicorn on a free port); only
    the MCP server when ``AUTH_ISSUER`` names another issuer."""
    if settings.resource_server_only:
        return create_resource_server_app(settings)
    oauth_settings = server_settings(settings)  # refuses bad settings before anything is opened
    model = make_model(settings.database_url, settings.sqlite_synchronous)
    # AUDIT_SQL=on: rows of oauth_audit_events on the same database, purged after AUDIT_RETENTION.
    on_event: EventHook = SQLAuditSink(model) if settings.audit_sql else AuditLines()
    server = OAuthServer(model, oauth_settings, on_event=on_event)
    users = UserStore.demo(settings.demo_username, settings.demo_password)
    # RATE_LIMIT_STORAGE=redis://…: the counters are shared by every worker process.
    limits = (RateLimits({**DEFAULT_LIMITS, **LOGIN_LIMITS}, storage_uri=settings.rate_limit_storage)
              if settings.rate_limit else RateLimits.disabled())
    sessions = SessionCookies(settings.session_secret, settings.session_lifetime, oauth_settings.secure_cookies)
    sign_in = SignIn(users, sessions, limits)
    mcp, mcp_endpoint = mcp_route(settings, server)

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        try:
            await prepare_database(model, settings.database_url)
            await check_signing_keys(server, settings)
            purge = asyncio.create_task(purge_periodically(server, settings.purge_interval))
            try:
                async with mcp.session_manager.run():
                    yield
            finally:
                purge.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await purge
        finally:
            if server.client_documents is not None:
                await server.client_documents.aclose()
            if server.identity_providers is not None:
                await server.identity_providers.aclose()
            await limits.aclose()
            await model.close()

    app = FastAPI(title="oauth_server example", lifespan=lifespan)

    @app.get("/health", tags=["example"])
    async def health() -> dict[str, str]:
        """Liveness probe for load balancers and the tests; needs no token."""
        return {"status": "ok"}

    app.include_router(mcp_auth_router(
        server,
        get_user=sign_in.get_user,
        user_scopes=users.user_scopes,
        templates_directory=TEMPLATES,
        rate_limits=limits,
    ))
    add_account_routes(app, sign_in, Templates(TEMPLATES))
    app.add_middleware(SessionMiddleware, sessions=sessions)
    # First: the busiest path, and FastAPI tries the routes in order (twice per request).
    app.router.routes.insert(0, mcp_endpoint)
    app.state.oauth_server = server
    app.state.settings = settings
    return app


def startup_banner(settings: ExampleSettings) -> str:
    """What ``main`` prints at start: where to connect, who may sign in, which tokens it issues.

    The demo password is shown only while it is the built-in default, which the README prints
    anyway; a password the operator chose with ``DEMO_PASSWORD`` is a secret and stays out of
    the terminal and of whatever collects its output (design.md: never log a credential). Nor
    is the key encryption secret or the signing key file's content.
    """
    listening = f"Listening on http://{settings.host}:{settings.port}"
    if settings.resource_server_only:
        return "\n".join([
            listening,
            f"Resource server of {settings.auth_issuer}   MCP endpoint: {settings.resource_url}",
            "No sign-in here: clients get their tokens from that issuer.",
        ])
    if settings.demo_password == ExampleSettings().demo_password:
        admin = f"{settings.demo_username}/{settings.demo_password}"
    else:
        admin = f"{settings.demo_username} (password from DEMO_PASSWORD)"
    lines = [
        listening,
        f"Issuer: {settings.issuer_url}   MCP endpoint: {settings.resource_url}",
        f"Demo users: {admin} (admin), guest/guest (guest)",
        f"Your account and connected apps: {settings.public_url}/account",
    ]
    if settings.access_token_format == "jwt":
        keys = "the key in SIGNING_KEY_FILE" if settings.signing_key_file else "keys managed in the database"
        lines.append(f"Access tokens: JWT signed with {keys}; JWKS: {settings.issuer_url}/.well-known/jwks.json")
    if settings.resource_urls:
        lines.append(f"Also issues tokens for: {', '.join(settings.resource_urls)}")
    return "\n".join(lines)


def main() -> None:
    """Start the example, or say in one line which setting is wrong (exit status 2)."""
    try:
        settings = ExampleSettings.from_env()
        logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        # alembic announces each of its plugins at INFO; the migrations it runs are worth seeing, those are not.
        logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)
        if settings.resource_server_only and settings.authorization_server_variables():
            logger.warning("AUTH_ISSUER makes this a resource server only; ignoring %s",
                           ", ".join(settings.authorization_server_variables()))
        app = create_app(settings)
    except ValueError as exc:  # SettingsError, and OAuthServerSettings' own checks
        print(f"error: {exc}", file=sys.stderr, flush=True)
        raise SystemExit(2) from None
    print(startup_banner(settings), flush=True)
    options: dict[str, Any] = {"host": settings.host, "port": settings.port, "access_log": settings.access_log,
                               "log_level": settings.log_level.lower()}
    if settings.workers > 1:
        # uvicorn starts each worker from an import string; every worker builds its own app
        # (model, pool, caches) from the same environment, and they share the database and Redis.
        uvicorn.run("example.server:app_from_env", factory=True, workers=settings.workers, **options)
        return
    if settings.gc_tuning:
        tune_garbage_collector()  # the server process only: an app built in tests leaves their GC alone
    uvicorn.run(app, **options)


def app_from_env() -> FastAPI:
    """One worker's app, from the environment (``WORKERS`` > 1: uvicorn calls this in each worker)."""
    settings = ExampleSettings.from_env()
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    app = create_app(settings)
    if settings.gc_tuning:
        tune_garbage_collector()  # this worker process, its app built
    return app


if __name__ == "__main__":
    main()
