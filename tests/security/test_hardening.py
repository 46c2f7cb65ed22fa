"""Deployment hardening: no plaintext credentials at rest or in logs, rate limits, CORS, input limits."""

from __future__ import annotations

import dataclasses
import logging
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from oauth_server import MemoryOAuthServerModel, OAuthServer, OAuthServerSettings, mcp_auth_router
from oauth_server.web.limits import RateLimits
from tests.conftest import ISSUER, signed_in_user
from tests.helpers import authorize_params, get_code, register, tokens_for


async def test_hardening_no_plaintext_credentials_in_storage_or_logs(
    http: httpx.AsyncClient, model: MemoryOAuthServerModel, caplog: pytest.LogCaptureFixture
) -> None:
    """RFC 9700 §4.x / design: credentials are stored as SHA-256 digests and never logged."""
    caplog.set_level(logging.DEBUG)
    confidential = await register(http, token_endpoint_auth_method="client_secret_post")
    client = await register(http)
    code = await get_code(http, client.client_id)
    first = (await http.post("/token", data={"grant_type": "authorization_code", "code": code,
                                              "client_id": client.client_id,
                                              "code_verifier": "v" * 43 + "-._~0123456789",
                                              "redirect_uri": "http://127.0.0.1:33418/callback"}))
    assert first.status_code == 200, first.text
    tokens = first.json()
    refreshed = (await http.post("/token", data={"grant_type": "refresh_token", "client_id": client.client_id,
                                                 "refresh_token": tokens["refresh_token"]})).json()
    stored_before_replay = repr(list(model.access_tokens.values()) + list(model.refresh_tokens.values()))
    await http.post("/token", data={"grant_type": "authorization_code", "code": code, "client_id": client.client_id,
                                    "code_verifier": "v" * 43 + "-._~0123456789"})  # a replay, logged
    secrets = [confidential.client_secret, code, tokens["access_token"], tokens["refresh_token"],
               refreshed["access_token"], refreshed["refresh_token"]]
    stored = repr([dataclasses.asdict(r) for store in (model.clients, model.codes, model.access_tokens,
                                                       model.refresh_tokens, model.pending) for r in store.values()])
    logged = caplog.text
    assert "replayed" in logged  # the replay was logged, without the code
    for secret in secrets:
        assert secret and secret not in stored + stored_before_replay and secret not in logged


def limited_app(limits: RateLimits) -> FastAPI:
    server = OAuthServer(MemoryOAuthServerModel(), OAuthServerSettings(
        issuer_url=ISSUER, resource_server_url=f"{ISSUER}/mcp", authorization_url=f"{ISSUER}/consent",
        scopes_supported=("mcp:tools",),
    ))
    app = FastAPI()
    app.include_router(mcp_auth_router(server, get_user=signed_in_user, rate_limits=limits))
    return app


async def test_hardening_rate_limit_429_with_retry_after_and_oauth_error() -> None:
    """RFC 6585 §4: 429 Too Many Requests with Retry-After; the body stays an OAuth error."""
    app = limited_app(RateLimits(limits={"register": "3/minute"}))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=ISSUER) as http:
        body = {"redirect_uris": ["https://a.example/cb"]}
        statuses = [(await http.post("/register", json=body)).status_code for _ in range(4)]
        assert statuses == [201, 201, 201, 429]
        response = await http.post("/register", json=body)
        assert response.status_code == 429 and int(response.headers["retry-after"]) >= 1
        assert response.json()["error"] == "temporarily_unavailable"


async def test_hardening_rate_limit_per_client_at_token() -> None:
    app = limited_app(RateLimits(limits={"token_client": "2/minute"}))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=ISSUER) as http:
        client, other = await register(http), await register(http)
        data = {"grant_type": "refresh_token", "refresh_token": "x"}
        statuses = [(await http.post("/token", data={**data, "client_id": client.client_id})).status_code
                    for _ in range(3)]
        assert statuses == [400, 400, 429]
        assert (await http.post("/token", data={**data, "client_id": other.client_id})).status_code == 400


async def test_hardening_rate_limits_shared_through_redis() -> None:
    """Several processes share one budget when the limits live in Redis (127.0.0.1:6379)."""
    rule = {"register": "3/minute"}
    prefix = f"oauth_server_test_{uuid.uuid4().hex}"  # a fresh budget for this run
    limits = [RateLimits(limits=rule, storage_uri="redis://127.0.0.1:6379/0", key_prefix=prefix) for _ in range(2)]
    first, second = (limited_app(each) for each in limits)
    body = {"redirect_uris": ["https://a.example/cb"]}
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=first), base_url=ISSUER) as a, \
                httpx.AsyncClient(transport=httpx.ASGITransport(app=second), base_url=ISSUER) as b:
            statuses = [(await (a if i % 2 else b).post("/register", json=body)).status_code for i in range(4)]
    finally:
        for each in limits:  # an unclosed Redis connection is a ResourceWarning, an error here
            await each.aclose()
    assert statuses == [201, 201, 201, 429]


async def test_hardening_rate_limits_off_switch() -> None:
    app = limited_app(RateLimits(limits={"register": "1/minute"}, enabled=False))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=ISSUER) as http:
        for _ in range(3):
            assert (await http.post("/register", json={"redirect_uris": ["https://a.example/cb"]})).status_code == 201


@pytest.mark.parametrize("path,method", [("/token", "POST"), ("/register", "POST"), ("/revoke", "POST"),
                                         ("/.well-known/oauth-authorization-server", "GET")])
async def test_hardening_cors_for_browser_clients(http: httpx.AsyncClient, path: str, method: str) -> None:
    """MCP Inspector runs in a browser: metadata, token, register and revoke answer CORS."""
    preflight = await http.options(path, headers={"Origin": "http://localhost:6274",
                                                  "Access-Control-Request-Method": method})
    assert preflight.status_code == 204 and preflight.headers["access-control-allow-origin"] == "*"
    response = await http.request(method, path, headers={"Origin": "http://localhost:6274"})
    assert response.headers["access-control-allow-origin"] == "*"


async def test_hardening_body_over_64k_is_413(http: httpx.AsyncClient) -> None:
    big = "x" * (64 * 1024 + 1)
    assert (await http.post("/token", data={"grant_type": big})).status_code == 413

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(100):
            yield b"a" * 1024

    response = await http.post("/token", content=chunks(),
                               headers={"content-type": "application/x-www-form-urlencoded"})
    assert response.status_code == 413


async def test_hardening_ten_megabyte_parameter_is_4xx(http: httpx.AsyncClient) -> None:
    response = await http.get("/authorize", params={"client_id": "x" * 60_000})
    assert 400 <= response.status_code < 500
    response = await http.post("/register", content=b"{" + b" " * 10_000_000 + b"}",
                               headers={"content-type": "application/json"})
    assert response.status_code == 413


async def test_hardening_json_to_form_endpoint_is_400(http: httpx.AsyncClient) -> None:
    for path in ("/token", "/revoke"):
        response = await http.post(path, json={"grant_type": "authorization_code", "token": "x", "client_id": "c"})
        assert response.status_code in (400, 401) and "error" in response.json()


async def test_hardening_get_on_post_endpoints_is_405(http: httpx.AsyncClient) -> None:
    for path in ("/token", "/register", "/revoke"):
        assert (await http.get(path)).status_code == 405


@pytest.mark.parametrize("params", [{"client_id": "a\x00b"}, {"state": "\x00"}])
async def test_hardening_nul_bytes_refused(http: httpx.AsyncClient, params: dict[str, str]) -> None:
    response = await http.get("/authorize", params=params)
    assert response.status_code == 400


async def test_hardening_nul_and_invalid_utf8_in_bodies(http: httpx.AsyncClient) -> None:
    form = {"content-type": "application/x-www-form-urlencoded"}
    assert (await http.post("/token", content=b"grant_type=a%00b&client_id=c", headers=form)).status_code == 400
    assert (await http.post("/register", json={"redirect_uris": ["https://a.example/cb"],
                                               "client_name": "a\x00"})).status_code == 400
    response = await http.post("/token", content=b"grant_type=\xff\xfe&client_id=\xc3\x28", headers=form)
    assert 400 <= response.status_code < 500
    response = await http.post("/register", content=b'{"redirect_uris": ["\xff"]}',
                               headers={"content-type": "application/json"})
    assert response.status_code == 400


async def test_hardening_form_parser_is_strict(http: httpx.AsyncClient) -> None:
    """RFC 6749 §3.2 / Appendix B: urlencoded UTF-8 only. Invalid UTF-8, more than 50 fields, or a
    multipart body is invalid_request, never silently repaired into different parameters."""
    form = {"content-type": "application/x-www-form-urlencoded"}
    response = await http.post("/token", content=b"grant_type=refresh_token&refresh_token=%C3%28", headers=form)
    assert response.status_code == 400 and response.json()["error"] == "invalid_request"
    assert "UTF-8" in response.json()["error_description"]
    crowded = "&".join(f"p{n}=x" for n in range(51)).encode()
    response = await http.post("/token", content=b"grant_type=refresh_token&" + crowded, headers=form)
    assert response.status_code == 400 and response.json()["error"] == "invalid_request"
    response = await http.post("/token", files={"grant_type": (None, "refresh_token")})
    assert response.status_code == 400 and response.json()["error"] == "invalid_request"
    raw = await http.get("/authorize?client_id=%FF")
    assert raw.status_code == 400 and "UTF-8" in raw.text


async def test_hardening_authorize_with_get_user_error_never_500(http: httpx.AsyncClient) -> None:
    client = await register(http)
    params = authorize_params(client.client_id, scope="\x7f")
    response = await http.get("/authorize", params=params)
    assert response.status_code in (303, 400)
    await tokens_for(http, client.client_id)
