"""The app under test: our router on the memory, SQLite or Postgres model, served by uvicorn.

A small JSON endpoint at ``/mcp`` is protected by ``require_bearer_auth(server, ["mcp:tools"])``;
``get_user`` returns a fixed user (the benchmark measures the server, not a login form); rate
limits are off (the driver sends thousands of requests per second from one address).

Usage: python -m bench.apps.ours --port 8000 [--model memory|sqlite|postgres] [--db-url URL]
"""

from __future__ import annotations

import argparse
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI
from starlette.requests import Request

from bench.apps import serve
from oauth_server import MemoryOAuthServerModel, OAuthServer, OAuthServerModel, mcp_auth_router, require_bearer_auth
from oauth_server.records import AccessToken
from oauth_server.web.limits import RateLimits

USER = "bench-user"


async def fixed_user(request: Request) -> str | None:
    return USER


def build_model(kind: str, db_url: str | None) -> OAuthServerModel:
    if kind == "memory":
        return MemoryOAuthServerModel()
    if not db_url:
        raise SystemExit(f"--model {kind} needs --db-url")
    from oauth_server.model.sqlalchemy import SQLAlchemyOAuthServerModel

    model: OAuthServerModel = SQLAlchemyOAuthServerModel(db_url)
    return model


def build_app(base_url: str, model: OAuthServerModel) -> FastAPI:
    server = OAuthServer(
        model=model,
        issuer_url=base_url,
        resource_server_url=f"{base_url}/mcp",
        authorization_url=f"{base_url}/consent",
        scopes_supported=["mcp:tools"],
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        create_all = getattr(model, "create_all", None)
        if create_all is not None:
            await create_all()
        yield
        dispose = getattr(model, "dispose", None) or getattr(model, "close", None)
        if dispose is not None:
            result = dispose()
            if hasattr(result, "__await__"):
                await result

    app = FastAPI(lifespan=lifespan, openapi_url=None, docs_url=None, redoc_url=None)
    app.include_router(mcp_auth_router(server, get_user=fixed_user, rate_limits=RateLimits.disabled()))
    guard = require_bearer_auth(server, ["mcp:tools"])

    @app.post("/mcp")
    async def mcp_endpoint(token: AccessToken = Depends(guard)) -> dict[str, object]:  # noqa: B008
        return {"subject": token.subject, "scopes": list(token.scopes)}

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--model", choices=["memory", "sqlite", "postgres"], default="memory")
    parser.add_argument("--db-url", default=None)
    args = parser.parse_args()
    base_url = f"http://127.0.0.1:{args.port}"
    serve(build_app(base_url, build_model(args.model, args.db_url)), args.port)


if __name__ == "__main__":
    main()
