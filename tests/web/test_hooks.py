"""The app's hooks (``get_user``, ``user_scopes``) may be plain functions or coroutine functions."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from starlette.requests import Request

from oauth_server import OAuthServer, mcp_auth_router
from oauth_server.web.limits import RateLimits
from tests.conftest import ISSUER
from tests.helpers import open_consent, query, register


def _app(server: OAuthServer, **hooks: object) -> FastAPI:
    app = FastAPI()
    app.include_router(mcp_auth_router(server, rate_limits=RateLimits.disabled(), **hooks))  # type: ignore[arg-type]
    return app


@pytest.fixture
async def plain_hooks_http(server: OAuthServer) -> AsyncIterator[httpx.AsyncClient]:
    def get_user(request: Request) -> str | None:
        return request.headers.get("x-test-user")

    def user_scopes(subject: str) -> tuple[str, ...]:
        return ("mcp:tools",)

    app = _app(server, get_user=get_user, user_scopes=user_scopes)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=ISSUER) as http:
        yield http


async def test_consent_page_with_a_plain_get_user_returning_none(server: OAuthServer) -> None:
    """A new user's first try, ``get_user=lambda request: None``, renders the page (no 500)."""
    app = _app(server, get_user=lambda request: None)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=ISSUER) as http:
        client = await register(http)
        _, fields = await open_consent(http, client.client_id)
        response = await http.post("/consent", data={**fields, "decision": "approve"})
        assert response.status_code == 401
        assert "Sign in to approve" in response.text


async def test_plain_hooks_approve_and_narrow_scopes(plain_hooks_http: httpx.AsyncClient) -> None:
    """A plain ``get_user`` signs the user in; a plain ``user_scopes`` narrows what is granted."""
    http = plain_hooks_http
    client = await register(http)
    _, fields = await open_consent(http, client.client_id, scope="mcp:tools mcp:admin")
    response = await http.post("/consent", data={**fields, "decision": "approve"},
                               headers={"x-test-user": "alice"})
    assert response.status_code == 303
    code = query(response.headers["location"])["code"]
    assert code
