"""RFC 8414 and RFC 9728 metadata documents, and the RFC 8414 one at the OpenID Connect locations."""

from __future__ import annotations

import httpx
from mcp.client.auth.utils import build_oauth_authorization_server_metadata_discovery_urls

from oauth_server import MemoryOAuthServerModel, OAuthServer, OAuthServerSettings
from oauth_server.resource import discovery
from tests.conftest import build_app


async def test_authorization_server_metadata(http: httpx.AsyncClient) -> None:
    """RFC 8414 §3.2/§3.3: issuer identical to the configured one; S256 only; RFC 9207 iss."""
    response = await http.get("/.well-known/oauth-authorization-server")
    assert response.status_code == 200
    doc = response.json()
    assert doc["issuer"] == "http://localhost:8000"  # no trailing slash added
    assert doc["authorization_endpoint"] == "http://localhost:8000/authorize"
    assert doc["token_endpoint"] == "http://localhost:8000/token"
    assert doc["registration_endpoint"] == "http://localhost:8000/register"
    assert doc["revocation_endpoint"] == "http://localhost:8000/revoke"
    assert doc["code_challenge_methods_supported"] == ["S256"]
    assert doc["response_types_supported"] == ["code"]
    assert doc["grant_types_supported"] == ["authorization_code", "refresh_token", "client_credentials"]
    assert set(doc["token_endpoint_auth_methods_supported"]) == {
        "none", "client_secret_basic", "client_secret_post", "private_key_jwt"}
    assert doc["authorization_response_iss_parameter_supported"] is True
    assert response.headers["access-control-allow-origin"] == "*"


async def test_issuer_with_path_inserts_well_known_before_the_path() -> None:
    """RFC 8414 §3.1: /.well-known/oauth-authorization-server/{issuer path}."""
    server = OAuthServer(MemoryOAuthServerModel(), OAuthServerSettings(
        issuer_url="https://as.example/tenant1", resource_server_url="https://as.example/mcp",
        authorization_url="https://as.example/consent",
    ))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=build_app(server)),
                                 base_url="https://as.example") as http:
        doc = (await http.get("/.well-known/oauth-authorization-server/tenant1")).json()
        assert doc["issuer"] == "https://as.example/tenant1"
        assert doc["token_endpoint"] == "https://as.example/tenant1/token"
        assert (await http.get("/.well-known/oauth-authorization-server")).status_code == 404
        assert (await http.post("/tenant1/token", data={"grant_type": "x", "client_id": "c"})).status_code == 401


async def test_protected_resource_metadata(http: httpx.AsyncClient) -> None:
    """RFC 9728 §3.1: the well-known segment goes before the resource path."""
    response = await http.get("/.well-known/oauth-protected-resource/mcp")
    assert response.status_code == 200
    doc = response.json()
    assert doc["resource"] == "http://localhost:8000/mcp"
    assert doc["authorization_servers"] == ["http://localhost:8000"]
    assert doc["bearer_methods_supported"] == ["header"]
    assert "mcp:tools" in doc["scopes_supported"]


async def test_openapi_lists_endpoints_with_form_fields(http: httpx.AsyncClient) -> None:
    schema = (await http.get("/openapi.json")).json()
    paths = schema["paths"]
    for path in ("/register", "/authorize", "/consent", "/token", "/revoke"):
        assert path in paths
    token_body = paths["/token"]["post"]["requestBody"]["content"]
    assert "application/x-www-form-urlencoded" in token_body


OIDC_ONLY_FIELDS = ("userinfo_endpoint", "subject_types_supported", "id_token_signing_alg_values_supported",
                    "claims_supported", "end_session_endpoint")


async def test_openid_configuration_serves_the_oauth_metadata_unchanged(http: httpx.AsyncClient) -> None:
    """MCP 2026-07-28: clients try RFC 8414, then OpenID Connect Discovery 1.0. RFC 8414 §5: the
    identifier names "a general OAuth 2.0 feature". The same bytes, CORS included; no OpenID
    Connect feature claimed (Discovery §3's OP-only fields are absent: we issue no ID token)."""
    oauth = await http.get("/.well-known/oauth-authorization-server")
    oidc = await http.get("/.well-known/openid-configuration")
    assert oidc.status_code == 200 and oidc.content == oauth.content
    assert oidc.headers["access-control-allow-origin"] == "*"
    assert oidc.headers["cache-control"] == oauth.headers["cache-control"]
    doc = oidc.json()
    assert doc["issuer"] == "http://localhost:8000"  # Discovery §4.3: identical to the issuer
    assert doc["code_challenge_methods_supported"] == ["S256"]  # MCP: OIDC documents MUST carry it
    assert not any(name in doc for name in OIDC_ONLY_FIELDS)
    assert "openid" not in doc["scopes_supported"] and "id_token" not in " ".join(doc["response_types_supported"])
    preflight = await http.options("/.well-known/openid-configuration", headers={
        "Origin": "https://inspector.example", "Access-Control-Request-Method": "GET"})
    assert preflight.status_code == 204 and preflight.headers["access-control-allow-origin"] == "*"
    assert "GET" in preflight.headers["access-control-allow-methods"]


async def test_openid_configuration_of_an_issuer_with_a_path() -> None:
    """OIDC Discovery §4.1 appends the well-known segment to the issuer; RFC 8414 §5 names the
    inserted form too, and MCP clients try both. Nothing at the root: that is another issuer's."""
    server = OAuthServer(MemoryOAuthServerModel(), OAuthServerSettings(
        issuer_url="https://as.example/tenant1", resource_server_url="https://as.example/mcp",
        authorization_url="https://as.example/consent",
    ))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=build_app(server)),
                                 base_url="https://as.example") as http:
        oauth = await http.get("/.well-known/oauth-authorization-server/tenant1")
        for path in ("/tenant1/.well-known/openid-configuration", "/.well-known/openid-configuration/tenant1"):
            response = await http.get(path)
            assert response.status_code == 200 and response.content == oauth.content, path
            assert response.headers["access-control-allow-origin"] == "*"
            assert (await http.options(path)).status_code == 204
        assert (await http.get("/.well-known/openid-configuration")).status_code == 404
        # Every OIDC location the MCP Python SDK tries, and the one our resource-server mode
        # fetches with discovery="oidc", finds the document and accepts its issuer.
        sdk_urls = build_oauth_authorization_server_metadata_discovery_urls(
            "https://as.example/tenant1", "https://as.example/mcp")
        for url in sdk_urls:
            assert (await http.get(url)).content == oauth.content, url
        oidc_url = discovery.oidc_metadata_url("https://as.example/tenant1")
        parsed = discovery.parse_metadata((await http.get(oidc_url)).json(), "https://as.example/tenant1")
        assert parsed.introspection_endpoint == "https://as.example/tenant1/introspect"
