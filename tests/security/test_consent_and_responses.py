"""Consent anti-forgery (RFC 6749 §10.12, RFC 9700 §4.4, §4.16) and response rules
(RFC 9207, RFC 8707, RFC 6749 §5.1, RFC 6750 §2)."""

from __future__ import annotations

import httpx
import pytest

from oauth_server import MemoryOAuthServerModel, OAuthServer, OAuthServerSettings
from tests.conftest import build_app
from tests.helpers import authorize_params, exchange, get_code, open_consent, register, tokens_for


async def test_consent_csrf_token_bound_to_one_request(http: httpx.AsyncClient) -> None:
    """RFC 6749 §10.12: the token of request A does not confirm request B."""
    client = await register(http)
    _, a = await open_consent(http, client.client_id)
    _, b = await open_consent(http, client.client_id)
    response = await http.post("/consent", data={"request_id": b["request_id"], "csrf_token": a["csrf_token"],
                                                 "decision": "approve"})
    assert response.status_code == 403


async def test_consent_tampered_hidden_fields_refused(http: httpx.AsyncClient) -> None:
    client = await register(http)
    _, fields = await open_consent(http, client.client_id)
    response = await http.post("/consent", data={**fields, "csrf_token": "0" * 64, "decision": "approve"})
    assert response.status_code == 403


async def test_consent_cross_site_post_without_cookie_refused(http: httpx.AsyncClient) -> None:
    """RFC 9700 §4.4: a cross-site form post carries no SameSite=Lax cookie, so it is refused."""
    client = await register(http)
    _, fields = await open_consent(http, client.client_id)
    http.cookies.clear()
    response = await http.post("/consent", data={**fields, "decision": "approve"})
    assert response.status_code == 403


async def test_consent_single_use(http: httpx.AsyncClient) -> None:
    client = await register(http)
    _, fields = await open_consent(http, client.client_id)
    assert (await http.post("/consent", data={**fields, "decision": "approve"})).status_code == 303
    assert (await http.post("/consent", data={**fields, "decision": "approve"})).status_code == 400


async def test_consent_new_client_always_asked(http: httpx.AsyncClient) -> None:
    """MCP security best practices (confused deputy): no consent is remembered across clients."""
    first, second = await register(http), await register(http)
    await get_code(http, first.client_id)
    response = await http.get("/authorize", params=authorize_params(second.client_id))
    assert "/consent?request_id=" in response.headers["location"]  # a page, not a code


async def test_consent_cookie_attributes_on_https() -> None:
    """RFC 6265bis §4.1.3.2: __Host- prefix, Secure, Path=/, HttpOnly, SameSite=Lax."""
    server = OAuthServer(MemoryOAuthServerModel(), OAuthServerSettings(
        issuer_url="https://as.example", resource_server_url="https://as.example/mcp",
        authorization_url="https://as.example/consent", scopes_supported=("mcp:tools",),
    ))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=build_app(server)),
                                 base_url="https://as.example") as http:
        client = await register(http)
        response = await http.get("/authorize", params=authorize_params(client.client_id))
        cookie = response.headers["set-cookie"].lower()
        assert cookie.startswith("__host-") and "secure" in cookie and "httponly" in cookie
        assert "samesite=lax" in cookie and "path=/" in cookie and "domain=" not in cookie


async def test_consent_page_escapes_and_warns_about_localhost(http: httpx.AsyncClient) -> None:
    client = await register(http, client_name='"><img src=x onerror=alert(1)>')
    response = await http.get("/authorize", params=authorize_params(client.client_id))
    page = (await http.get(response.headers["location"])).text
    assert "<img" not in page and "&lt;img" in page and "runs on your own computer" in page


async def test_no_cors_on_authorize_and_consent(http: httpx.AsyncClient) -> None:
    """RFC 9700 §4.16: authorization is a navigation, never a cross-origin fetch."""
    client = await register(http)
    response = await http.get("/authorize", params=authorize_params(client.client_id),
                              headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in response.headers
    assert (await http.options("/authorize")).status_code == 405


async def test_response_token_no_store_on_success_and_error(http: httpx.AsyncClient) -> None:
    """RFC 6749 §5.1: Cache-Control: no-store on token responses."""
    client = await register(http)
    ok = await exchange(http, client.client_id, await get_code(http, client.client_id))
    bad = await exchange(http, client.client_id, "bogus")
    for response in (ok, bad):
        assert response.headers["cache-control"] == "no-store"
        assert response.headers["content-type"] == "application/json"


@pytest.mark.parametrize("resource", ["http://localhost:8000/mcp#frag", "/mcp", "https://unknown.example/mcp"])
async def test_response_resource_values_validated(http: httpx.AsyncClient, resource: str) -> None:
    """RFC 8707 §2: absolute URI, no fragment, one we serve → else invalid_target."""
    client = await register(http)
    code = await get_code(http, client.client_id)
    response = await exchange(http, client.client_id, code, resource=resource)
    assert response.json()["error"] == "invalid_target"


async def test_response_two_resources_at_token_refused(http: httpx.AsyncClient) -> None:
    client = await register(http)
    code = await get_code(http, client.client_id)
    response = await http.post("/token", content=(
        f"grant_type=authorization_code&code={code}&client_id={client.client_id}&code_verifier={'v' * 43}"
        "&resource=http%3A%2F%2Flocalhost%3A8000%2Fmcp&resource=http%3A%2F%2Flocalhost%3A8000%2Fmcp"),
        headers={"content-type": "application/x-www-form-urlencoded"})
    assert response.json()["error"] == "invalid_target"


async def test_response_token_for_another_resource_refused(http: httpx.AsyncClient, server: OAuthServer) -> None:
    """RFC 8707 §2 / MCP authorization: audience-bound tokens."""
    client = await register(http)
    tokens = await tokens_for(http, client.client_id)
    other = OAuthServer(server.model, OAuthServerSettings(
        issuer_url="http://localhost:8000", resource_server_url="http://localhost:9/mcp",
        authorization_url="http://localhost:8000/consent",
    ), clock=server.clock)
    assert await other.verify_access_token(tokens["access_token"]) is None


async def test_response_token_in_query_string_refused(http: httpx.AsyncClient) -> None:
    """OAuth 2.1 §5.1.1: bearer tokens in URIs are not accepted."""
    client = await register(http)
    tokens = await tokens_for(http, client.client_id)
    response = await http.post(f"/mcp?access_token={tokens['access_token']}")
    assert response.status_code == 401


async def test_revocation_unknown_expired_revoked_all_200(http: httpx.AsyncClient, clock: object) -> None:
    """RFC 7009 §2.2: invalid tokens do not cause an error response."""
    client = await register(http)
    tokens = await tokens_for(http, client.client_id)
    for token in ("unknown", tokens["access_token"], tokens["access_token"]):
        response = await http.post("/revoke", data={"token": token, "client_id": client.client_id})
        assert response.status_code == 200


async def test_revocation_of_refresh_kills_access_immediately(http: httpx.AsyncClient) -> None:
    """RFC 7009 §2.1: revoking a refresh token SHOULD invalidate its access tokens."""
    client = await register(http)
    tokens = await tokens_for(http, client.client_id)
    await http.post("/revoke", data={"token": tokens["refresh_token"], "token_type_hint": "refresh_token",
                                     "client_id": client.client_id})
    assert (await http.post("/mcp", headers={"Authorization": f"Bearer {tokens['access_token']}"})).status_code == 401


async def test_revocation_other_clients_token_stays_active(http: httpx.AsyncClient) -> None:
    """RFC 7009 §2.1: the AS verifies the token was issued to the requesting client."""
    owner, public = await register(http), await register(http)
    confidential = await register(http, token_endpoint_auth_method="client_secret_post")
    tokens = await tokens_for(http, owner.client_id)
    assert (await http.post("/revoke", data={"token": tokens["access_token"],
                                             "client_id": public.client_id})).status_code == 200
    refused = await http.post("/revoke", data={"token": tokens["access_token"], "client_id": confidential.client_id,
                                               "client_secret": confidential.client_secret or ""})
    assert refused.status_code == 400
    assert (await http.post("/mcp", headers={"Authorization": f"Bearer {tokens['access_token']}"})).status_code == 200


async def test_response_iss_on_every_authorization_response(http: httpx.AsyncClient) -> None:
    """RFC 9207 §2: success, authorize-time errors and consent errors all carry iss."""
    from tests.helpers import query

    client = await register(http)
    bad = await http.get("/authorize", params=authorize_params(client.client_id, code_challenge_method="plain"))
    _, fields = await open_consent(http, client.client_id)
    good = await http.post("/consent", data={**fields, "decision": "approve"})
    _, fields = await open_consent(http, client.client_id)
    denied = await http.post("/consent", data={**fields, "decision": "deny"})
    for response in (bad, good, denied):
        assert query(response.headers["location"])["iss"] == "http://localhost:8000"
