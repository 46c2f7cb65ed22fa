"""RFC 8414 and RFC 9728 metadata documents."""

from __future__ import annotations

import httpx

from oauth_server import MemoryOAuthServerModel, OAuthServer, OAuthServerSettings
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
    assert doc["grant_types_supported"] == ["authorization_code", "refresh_token"]
    assert set(doc["token_endpoint_auth_methods_supported"]) == {"none", "client_secret_basic", "client_secret_post"}
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
