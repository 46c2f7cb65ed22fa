"""The app under test: our router on the memory, SQLite or Postgres model, served by uvicorn.

A small JSON endpoint at ``/mcp`` is protected by ``BearerAuthMiddleware(app, server, ["mcp:tools"])``,
the way the README puts it in front of an MCP server (the MCP SDK peer wraps its endpoint the same
way, in ``RequireAuthMiddleware``); ``--guard dependency`` uses the FastAPI dependency
``require_bearer_auth`` instead;
``get_user`` returns a fixed user (the benchmark measures the server, not a login form); rate
limits are off (the driver sends thousands of requests per second from one address).

Usage: python -m bench.apps.ours --port 8000 [--model memory|sqlite|postgres] [--db-url URL]
       [--token-format opaque|jwt] [--guard middleware|dependency|resource-server]
       [--sqlite-synchronous FULL|NORMAL] [--workers N]
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI
from mcp.server.auth.middleware.auth_context import get_access_token
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from bench.apps import serve, serve_workers
from example.tuning import tune_garbage_collector
from oauth_server import (
    BearerAuthMiddleware,
    MemoryOAuthServerModel,
    OAuthServer,
    OAuthServerModel,
    OAuthServerSettings,
    mcp_auth_router,
    require_bearer_auth,
)
from oauth_server.resource import ResourceServer, VerifiedToken
from oauth_server.web.limits import RateLimits

USER = "bench-user"


async def fixed_user(request: Request) -> str | None:
    return USER


def build_model(kind: str, db_url: str | None, sqlite_synchronous: str | None = None) -> OAuthServerModel:
    if kind == "memory":
        return MemoryOAuthServerModel()
    if not db_url:
        raise SystemExit(f"--model {kind} needs --db-url")
    from oauth_server.model.sqlalchemy import SQLAlchemyOAuthServerModel

    model: OAuthServerModel = SQLAlchemyOAuthServerModel(db_url, sqlite_synchronous=sqlite_synchronous or "FULL")
    return model


async def protected_json(scope: Scope, receive: Receive, send: Send) -> None:
    """The resource behind BearerAuthMiddleware: who called, with which scopes."""
    token = get_access_token()
    assert token is not None
    await JSONResponse({"subject": token.subject, "scopes": token.scopes})(scope, receive, send)


#: ``--short-lifetimes`` (bench.churn): everything expires within seconds, so a long run shows
#: whether expired records are really dropped.
def settings_for(base_url: str, short_lifetimes: bool, token_format: str = "opaque") -> OAuthServerSettings:
    settings = OAuthServerSettings(
        issuer_url=base_url, resource_server_url=f"{base_url}/mcp", authorization_url=f"{base_url}/consent",
        scopes_supported=("mcp:tools",),
    )
    if token_format == "jwt":
        # A benchmark-only secret: managed RS256 keys in the model, as a deployment would run them.
        settings = dataclasses.replace(settings, access_token_format="jwt",
                                       key_encryption_secret="bench-only key encryption secret, 32+ bytes")
    if short_lifetimes:
        settings = dataclasses.replace(settings, access_token_lifetime=2, refresh_token_lifetime=6,
                                       refresh_token_absolute_lifetime=12, authorization_code_lifetime=5,
                                       pending_authorization_lifetime=5)
    return settings


def build_app(base_url: str, model: OAuthServerModel, guard: str = "middleware",
              short_lifetimes: bool = False, token_format: str = "opaque", create_tables: bool = True) -> FastAPI:
    server = OAuthServer(model, settings_for(base_url, short_lifetimes, token_format))

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        create_all = getattr(model, "create_all", None)
        if create_all is not None and create_tables:
            await create_all()
        yield
        dispose = getattr(model, "dispose", None) or getattr(model, "close", None)
        if dispose is not None:
            result = dispose()
            if hasattr(result, "__await__"):
                await result

    app = FastAPI(lifespan=lifespan, openapi_url=None, docs_url=None, redoc_url=None)
    app.include_router(mcp_auth_router(server, get_user=fixed_user, rate_limits=RateLimits.disabled()))
    if guard in ("middleware", "resource-server"):
        # resource-server: /mcp verifies JWTs as a separate MCP server would, with only the
        # issuer's metadata and JWKS (fetched over loopback from this same process), no model.
        verifier = (ResourceServer(f"{base_url}/mcp", [base_url], allow_loopback=True, allow_http=True)
                    if guard == "resource-server" else server)
        protected = BearerAuthMiddleware(protected_json, verifier, ["mcp:tools"])
        app.router.routes.insert(0, Route("/mcp", endpoint=protected, methods=["POST"]))
        return app
    dependency = require_bearer_auth(server, ["mcp:tools"])

    @app.post("/mcp")
    async def mcp_endpoint(token: VerifiedToken = Depends(dependency)) -> dict[str, object]:  # noqa: B008
        return {"subject": token.subject, "scopes": list(token.scopes)}

    return app


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--model", choices=["memory", "sqlite", "postgres"], default="memory")
    parser.add_argument("--db-url", default=None)
    parser.add_argument("--guard", choices=["middleware", "dependency", "resource-server"], default="middleware")
    parser.add_argument("--token-format", choices=["opaque", "jwt"], default="opaque")
    parser.add_argument("--short-lifetimes", action="store_true")
    parser.add_argument("--sqlite-synchronous", choices=["FULL", "NORMAL"], default=None,
                        help="the SQL model's sqlite_synchronous (default: the model's own, FULL)")
    parser.add_argument("--workers", type=int, default=1, help="uvicorn worker processes (Postgres only)")
    args = parser.parse_args(argv)
    if args.guard == "resource-server" and args.token_format != "jwt":
        raise SystemExit("--guard resource-server verifies JWTs: add --token-format jwt")
    return args


def app_from(args: argparse.Namespace, create_tables: bool = True) -> FastAPI:
    model = build_model(args.model, args.db_url, args.sqlite_synchronous)
    return build_app(f"http://127.0.0.1:{args.port}", model, args.guard, args.short_lifetimes, args.token_format,
                     create_tables)


def worker_app() -> FastAPI:
    """One uvicorn worker's app (``--workers`` > 1), from the arguments ``main`` left in the
    environment; ``main`` created the tables (workers doing it at once would collide)."""
    app = app_from(parse(json.loads(os.environ[_ARGV])), create_tables=False)
    tune_garbage_collector()  # as serve() does for one process
    return app


async def _create_tables(args: argparse.Namespace) -> None:
    model = build_model(args.model, args.db_url, args.sqlite_synchronous)
    create_all = getattr(model, "create_all", None)
    if create_all is not None:
        await create_all()
    close = getattr(model, "close", None)
    if close is not None:
        await close()


_ARGV = "BENCH_OURS_ARGV"


def main() -> None:
    args = parse()
    if args.workers > 1:
        asyncio.run(_create_tables(args))
        os.environ[_ARGV] = json.dumps(sys.argv[1:])
        serve_workers("bench.apps.ours:worker_app", args.port, args.workers)
        return
    serve(app_from(args), args.port)


if __name__ == "__main__":
    main()
