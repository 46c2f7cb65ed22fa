"""Fixtures for endpoint tests: an app on the memory model, an in-process HTTP client, a frozen clock."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import Depends, FastAPI
from starlette.requests import Request

from oauth_server import MemoryOAuthServerModel, OAuthServer, OAuthServerSettings, mcp_auth_router, require_bearer_auth
from oauth_server.resource import VerifiedToken
from tests.helpers import FrozenClock

ISSUER = "http://localhost:8000"
RESOURCE = "http://localhost:8000/mcp"
SCOPES = ("mcp:tools", "mcp:prompts", "mcp:admin")


async def signed_in_user(request: Request) -> str | None:
    """Tests sign in by sending a header; the example uses a real login form."""
    return request.headers.get("x-test-user")


def build_app(server: OAuthServer) -> FastAPI:
    app = FastAPI()
    app.include_router(mcp_auth_router(server, get_user=signed_in_user))
    guard = require_bearer_auth(server, ["mcp:tools"])

    @app.post("/mcp")
    async def mcp_endpoint(token: VerifiedToken = Depends(guard)) -> dict[str, object]:  # noqa: B008
        return {"subject": token.subject, "scopes": list(token.scopes)}

    return app


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock()


@pytest.fixture
def model() -> MemoryOAuthServerModel:
    return MemoryOAuthServerModel()


@pytest.fixture
def server(model: MemoryOAuthServerModel, clock: FrozenClock) -> OAuthServer:
    return OAuthServer(model, OAuthServerSettings(
        issuer_url=ISSUER, resource_server_url=RESOURCE, authorization_url=f"{ISSUER}/consent",
        scopes_supported=SCOPES, default_scopes=("mcp:tools",),
    ), clock=clock)


@pytest.fixture
async def http(server: OAuthServer) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=build_app(server))
    async with httpx.AsyncClient(transport=transport, base_url=ISSUER,
                                 headers={"x-test-user": "alice"}) as client:
        yield client
