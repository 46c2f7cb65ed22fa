"""RFC 7591 dynamic client registration."""

from __future__ import annotations

import httpx
import pytest

from oauth_server import OAuthServer, OAuthServerModel, OAuthServerSettings
from tests.helpers import FrozenClock


async def test_public_client_gets_no_secret(http: httpx.AsyncClient) -> None:
    response = await http.post("/register", json={"redirect_uris": ["http://127.0.0.1:9999/cb"],
                                                  "token_endpoint_auth_method": "none", "client_name": "X"})
    assert response.status_code == 201
    body = response.json()
    assert body["client_id"] and "client_secret" not in body
    assert body["redirect_uris"] == ["http://127.0.0.1:9999/cb"]
    assert response.headers["cache-control"] == "no-store"


async def test_confidential_client_gets_secret_with_expiry(http: httpx.AsyncClient, clock: FrozenClock) -> None:
    """RFC 7591 §3.2.1: client_secret_expires_at is required when a secret is issued."""
    response = await http.post("/register", json={"redirect_uris": ["https://app.example/cb"]})
    body = response.json()
    assert body["token_endpoint_auth_method"] == "client_secret_basic"  # RFC 7591 §2 default
    assert len(body["client_secret"]) >= 43
    assert body["client_secret_expires_at"] == int(clock.now) + 7_776_000


async def test_secret_lifetime_zero_means_never(model: OAuthServerModel, clock: FrozenClock) -> None:
    """mcp-oauth-server could not set 0; here 0 is honoured and published as 0 (never)."""
    server = OAuthServer(model, OAuthServerSettings(
        issuer_url="http://localhost:8000", resource_server_url="http://localhost:8000/mcp",
        authorization_url="http://localhost:8000/consent", client_secret_lifetime=0,
    ), clock=clock)
    info = await server.register({"redirect_uris": ["https://app.example/cb"]})
    assert info["client_secret_expires_at"] == 0


async def test_server_owned_fields_are_ignored(http: httpx.AsyncClient) -> None:
    response = await http.post("/register", json={
        "redirect_uris": ["https://app.example/cb"], "client_id": "chosen", "client_secret": "chosen",
        "client_id_issued_at": 1, "client_secret_expires_at": 0, "token_endpoint_auth_method": "none"})
    body = response.json()
    assert response.status_code == 201
    assert body["client_id"] != "chosen" and "client_secret" not in body and body["client_id_issued_at"] != 1


@pytest.mark.parametrize("uri", [
    "http://app.example/cb",            # http off loopback (OAuth 2.1 §2.3.1)
    "https://app.example/cb#frag",      # fragment (RFC 6749 §3.1.2)
    "javascript:alert(1)",              # dangerous scheme
    "data:text/html,hi",
    "file:///etc/passwd",
    "https://user:pw@app.example/cb",   # userinfo
    "https://*.example/cb",             # wildcard
    "/relative/cb",                     # not absolute
    "",
])
async def test_bad_redirect_uris_are_refused(http: httpx.AsyncClient, uri: str) -> None:
    response = await http.post("/register", json={"redirect_uris": [uri], "token_endpoint_auth_method": "none"})
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_redirect_uri"


@pytest.mark.parametrize("uri", ["http://localhost:3000/cb", "http://127.0.0.1/cb", "http://[::1]:8080/cb",
                                 "https://app.example/cb?x=1", "cursor://anysphere.cursor-retrieval/oauth/cb",
                                 "com.example.app:/oauth2redirect"])
async def test_good_redirect_uris_are_accepted(http: httpx.AsyncClient, uri: str) -> None:
    response = await http.post("/register", json={"redirect_uris": [uri], "token_endpoint_auth_method": "none"})
    assert response.status_code == 201, response.text


@pytest.mark.parametrize("metadata", [
    {"token_endpoint_auth_method": "private_key_jwt"},
    {"grant_types": ["client_credentials"]},
    {"grant_types": ["refresh_token"]},
    {"response_types": ["token"]},
    {"scope": "mcp:unknown"},
    {"client_name": "x" * 300},
    {"application_type": "desktop"},
])
async def test_inconsistent_metadata_is_refused(http: httpx.AsyncClient, metadata: dict[str, object]) -> None:
    response = await http.post("/register", json={"redirect_uris": ["https://app.example/cb"], **metadata})
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_client_metadata"


async def test_web_application_type_needs_https(http: httpx.AsyncClient) -> None:
    response = await http.post("/register", json={"redirect_uris": ["http://127.0.0.1:3000/cb"],
                                                  "application_type": "web"})
    assert response.status_code == 400 and response.json()["error"] == "invalid_redirect_uri"


@pytest.mark.parametrize("body,content_type", [
    (b"{not json", "application/json"), (b"[1,2]", "application/json"),
    (b"redirect_uris=https://a/cb", "application/x-www-form-urlencoded"),
])
async def test_malformed_bodies_get_a_clear_error(http: httpx.AsyncClient, body: bytes, content_type: str) -> None:
    response = await http.post("/register", content=body, headers={"content-type": content_type})
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_client_metadata"
