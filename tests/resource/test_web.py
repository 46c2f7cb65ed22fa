"""The web pieces with a foreign issuer: ``require_bearer_auth``, ``BearerAuthMiddleware`` and
``protected_resource_router`` over a ``ResourceServer`` (RFC 6750 §3, RFC 9728)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import Depends, FastAPI
from mcp.server.auth.middleware.auth_context import get_access_token
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from oauth_server import (
    BearerAuthMiddleware,
    IssuerConfig,
    ResourceServer,
    VerifiedToken,
    protected_resource_router,
    require_bearer_auth,
)
from tests.helpers import FrozenClock
from tests.resource.support import ISSUER, RESOURCE, FakeIssuer, SigningKey, claims, resource_server

METADATA_URL = "https://mcp.example/.well-known/oauth-protected-resource/mcp"


async def whoami(scope: Scope, receive: Receive, send: Send) -> None:
    """An MCP-ish ASGI app: reads the caller the way MCP tools do."""
    token = get_access_token()
    assert token is not None
    body = {"client_id": token.client_id, "subject": token.subject, "scopes": token.scopes,
            "resource": token.resource, "iss": (token.claims or {}).get("iss")}
    await JSONResponse(body)(scope, receive, send)


def build_app(rs: ResourceServer) -> FastAPI:
    app = FastAPI()
    app.include_router(protected_resource_router(RESOURCE, rs.authorization_servers, ["mcp:tools"], "Test MCP"))
    tools = require_bearer_auth(rs, ["mcp:tools"])
    admin = require_bearer_auth(rs, ["mcp:tools"], required_roles=["mcp-admin"])

    @app.post("/api")
    async def api(token: VerifiedToken = Depends(tools)) -> dict[str, object]:  # noqa: B008
        return {"subject": token.subject, "scopes": list(token.scopes), "audience": list(token.audience)}

    @app.post("/admin")
    async def admin_route(token: VerifiedToken = Depends(admin)) -> dict[str, object]:  # noqa: B008
        return {"roles": list(token.roles)}

    app.router.routes.append(Route("/mcp", BearerAuthMiddleware(whoami, rs, ["mcp:tools"]), methods=["POST"]))
    return app


@pytest.fixture
def rs(issuer: FakeIssuer, clock: FrozenClock) -> ResourceServer:
    config = IssuerConfig(ISSUER, role_claims=("realm_access.roles",), role_scopes={"mcp-user": ["mcp:tools"]})
    return resource_server(clock, config, issuers=(issuer,))


@pytest.fixture
async def http(rs: ResourceServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=build_app(rs)),
                                 base_url="https://mcp.example") as client:
        yield client


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_route_and_middleware_accept_a_foreign_token(http: httpx.AsyncClient, rsa_key: SigningKey,
                                                           clock: FrozenClock) -> None:
    token = rsa_key.sign(claims(clock.now))
    response = await http.post("/api", headers=bearer(token))
    assert response.status_code == 200
    assert response.json() == {"subject": "alice", "scopes": ["mcp:tools"], "audience": [RESOURCE]}
    response = await http.post("/mcp", headers=bearer(token))
    assert response.status_code == 200
    assert response.json() == {"client_id": "inspector", "subject": "alice", "scopes": ["mcp:tools"],
                               "resource": RESOURCE, "iss": ISSUER}


async def test_no_token_is_challenged_with_the_resource_metadata(http: httpx.AsyncClient) -> None:
    """RFC 9728 §5.1: the challenge points at this resource's metadata; RFC 6750 §3: no error
    code when no token was sent."""
    for path in ("/api", "/mcp"):
        response = await http.post(path)
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == f'Bearer resource_metadata="{METADATA_URL}", scope="mcp:tools"'


async def test_bad_token_is_invalid_token(http: httpx.AsyncClient, rsa_key: SigningKey, clock: FrozenClock) -> None:
    """RFC 6750 §3.1: a token for another audience is ``invalid_token`` (401)."""
    token = rsa_key.sign(claims(clock.now, aud="https://other.example"))
    for path in ("/api", "/mcp"):
        response = await http.post(path, headers=bearer(token))
        assert response.status_code == 401
        assert response.headers["www-authenticate"].startswith('Bearer error="invalid_token"')


async def test_missing_scope_is_403_naming_it(http: httpx.AsyncClient, rsa_key: SigningKey,
                                              clock: FrozenClock) -> None:
    """RFC 6750 §3.1: ``insufficient_scope`` with the scope the resource needs."""
    token = rsa_key.sign(claims(clock.now, scope="mcp:prompts"))
    response = await http.post("/mcp", headers=bearer(token))
    assert response.status_code == 403
    challenge = response.headers["www-authenticate"]
    assert 'error="insufficient_scope"' in challenge and 'scope="mcp:tools"' in challenge
    assert response.json()["error_description"] == "requires scope: mcp:tools"


async def test_role_mapping_grants_the_scope(http: httpx.AsyncClient, rsa_key: SigningKey,
                                             clock: FrozenClock) -> None:
    token = rsa_key.sign(claims(clock.now, scope="openid", realm_access={"roles": ["mcp-user"]}))
    assert (await http.post("/mcp", headers=bearer(token))).status_code == 200


async def test_required_role_missing_is_403_naming_the_role(http: httpx.AsyncClient, rsa_key: SigningKey,
                                                            clock: FrozenClock) -> None:
    """RFC 6750 §3.1 ``insufficient_scope``: the description names the missing role."""
    user = rsa_key.sign(claims(clock.now, realm_access={"roles": ["mcp-user"]}))
    response = await http.post("/admin", headers=bearer(user))
    assert response.status_code == 403
    assert 'error="insufficient_scope"' in response.headers["www-authenticate"]
    assert response.json()["detail"]["error_description"] == "requires role: mcp-admin"
    admin = rsa_key.sign(claims(clock.now, realm_access={"roles": ["mcp-user", "mcp-admin"]}))
    response = await http.post("/admin", headers=bearer(admin))
    assert response.status_code == 200 and response.json() == {"roles": ["mcp-user", "mcp-admin"]}


async def test_missing_scope_and_role_are_both_named(http: httpx.AsyncClient, rsa_key: SigningKey,
                                                     clock: FrozenClock) -> None:
    token = rsa_key.sign(claims(clock.now, scope="openid"))
    response = await http.post("/admin", headers=bearer(token))
    assert response.status_code == 403
    assert response.json()["detail"]["error_description"] == "requires scope: mcp:tools; requires role: mcp-admin"


async def test_issuer_down_is_503_without_invalid_token(http: httpx.AsyncClient, issuer: FakeIssuer,
                                                        rsa_key: SigningKey, clock: FrozenClock) -> None:
    """The verifier cannot tell: 503 ``temporarily_unavailable``, never ``invalid_token`` (the
    client keeps its token) and never a 500 or an acceptance."""
    issuer.fail["/tenant/jwks"] = 500
    token = rsa_key.sign(claims(clock.now))
    for path in ("/api", "/mcp"):
        response = await http.post(path, headers=bearer(token))
        assert response.status_code == 503
        challenge = response.headers["www-authenticate"]
        assert challenge == 'Bearer error="temporarily_unavailable"'
        assert "invalid_token" not in challenge


async def test_protected_resource_metadata(http: httpx.AsyncClient) -> None:
    """RFC 9728 §3.1: at the well-known path inserted before the resource path, with CORS."""
    response = await http.get("/.well-known/oauth-protected-resource/mcp")
    assert response.status_code == 200
    assert response.json() == {"resource": RESOURCE, "authorization_servers": [ISSUER],
                               "bearer_methods_supported": ["header"], "scopes_supported": ["mcp:tools"],
                               "resource_name": "Test MCP"}
    assert response.headers["access-control-allow-origin"] == "*"
    assert "max-age" in response.headers["cache-control"]
    preflight = await http.options("/.well-known/oauth-protected-resource/mcp",
                                   headers={"Origin": "https://inspector.example",
                                            "Access-Control-Request-Method": "GET"})
    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-origin"] == "*"
    assert "GET" in preflight.headers["access-control-allow-methods"]


def test_protected_resource_router_checks_its_input() -> None:
    with pytest.raises(ValueError):
        protected_resource_router("https://mcp.example/mcp", [])
    with pytest.raises(ValueError):
        protected_resource_router("http://mcp.example/mcp", [ISSUER])
    with pytest.raises(ValueError):
        protected_resource_router("https://mcp.example/mcp#x", [ISSUER])


def test_resource_must_match_the_verifier(rs: ResourceServer) -> None:
    with pytest.raises(ValueError, match="differs"):
        require_bearer_auth(rs, resource="https://elsewhere.example/mcp")


async def test_request_reaches_the_route_only_after_the_check(rs: ResourceServer) -> None:
    """The dependency is an ordinary FastAPI dependency: a Request without a token never runs
    the route body."""
    ran: list[bool] = []
    app = FastAPI()

    @app.get("/x")
    async def route(request: Request, token: VerifiedToken = Depends(require_bearer_auth(rs))) -> None:  # noqa: B008
        ran.append(True)

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="https://mcp.example") as client:
        assert (await client.get("/x")).status_code == 401
    assert ran == []
