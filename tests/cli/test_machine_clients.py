"""``clients create`` for machine and enterprise clients: the operator's way to a
client_credentials client (which dynamic registration refuses by default), private_key_jwt keys,
and ID-JAG (jwt-bearer) clients; a created machine client then gets a token from a server on
the same database."""

from __future__ import annotations

import asyncio
import base64
import json
from pathlib import Path

import httpx

from oauth_server import OAuthServer, OAuthServerSettings, keys
from oauth_server.model.sqlalchemy import SQLAlchemyOAuthServerModel
from tests.cli.conftest import invoke
from tests.conftest import build_app

ISSUER = "http://localhost:8000"
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"


def create(url: str, *args: str) -> tuple[int, str]:
    result = invoke("clients", "create", "--database-url", url, "--json", "--scopes-supported", "mcp:tools,mcp:admin",
                    *args)
    return result.exit_code, result.stdout if result.exit_code == 0 else result.stderr


def token_for(url: str, client_id: str, secret: str) -> httpx.Response:
    async def ask() -> httpx.Response:
        model = SQLAlchemyOAuthServerModel(url)
        server = OAuthServer(model, OAuthServerSettings(
            issuer_url=ISSUER, resource_server_url=f"{ISSUER}/mcp", authorization_url=f"{ISSUER}/consent",
            scopes_supported=("mcp:tools", "mcp:admin")))
        credentials = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
        try:
            transport = httpx.ASGITransport(app=build_app(server))
            async with httpx.AsyncClient(transport=transport, base_url=ISSUER) as http:
                return await http.post("/token", data={"grant_type": "client_credentials"},
                                       headers={"Authorization": f"Basic {credentials}"})
        finally:
            await model.close()

    return asyncio.run(ask())


def test_create_a_client_credentials_client_that_gets_a_token(url: str) -> None:
    """No redirect URI needed; the secret is printed once; the server issues it a token whose
    scope is its registered one."""
    code, out = create(url, "--name", "nightly", "--grant-type", "client_credentials", "--scope", "mcp:tools")
    assert code == 0, out
    body = json.loads(out)
    assert body["grant_types"] == ["client_credentials"] and body["redirect_uris"] == []
    assert body["response_types"] == [] and body["token_endpoint_auth_method"] == "client_secret_basic"
    response = token_for(url, body["client_id"], body["client_secret"])
    assert response.status_code == 200, response.text
    assert response.json()["scope"] == "mcp:tools" and "refresh_token" not in response.json()


def test_machine_clients_must_be_confidential_and_code_clients_need_a_redirect(url: str) -> None:
    """OAuth 2.1 §4.2: a public client_credentials client is refused (exit 2), as is an
    authorization_code client without a redirect URI (RFC 7591 §2)."""
    code, err = create(url, "--grant-type", "client_credentials", "--auth-method", "none")
    assert code == 2 and "confidential" in err
    code, err = create(url, "--grant-type", "authorization_code")
    assert code == 2 and "redirect_uris" in err
    assert json.loads(invoke("clients", "list", "--database-url", url, "--json").stdout) == []


def test_private_key_jwt_and_id_jag_clients(url: str, tmp_path: Path) -> None:
    """--jwks-file registers public keys (no secret issued); jwt-bearer (ID-JAG) clients too."""
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps({"keys": [keys.public_jwk(keys.generate("ES256"))]}))
    code, out = create(url, "--grant-type", "client_credentials", "--auth-method", "private_key_jwt",
                       "--jwks-file", str(jwks))
    assert code == 0, out
    assert "client_secret" not in json.loads(out) and json.loads(out)["jwks"]["keys"][0]["kty"] == "EC"
    code, err = create(url, "--grant-type", "client_credentials", "--auth-method", "private_key_jwt")
    assert code == 2 and "jwks" in err
    jwks.write_text("{not json")
    code, err = create(url, "--grant-type", "client_credentials", "--auth-method", "private_key_jwt",
                       "--jwks-file", str(jwks))
    assert code == 2 and "not JSON" in err
    code, out = create(url, "--grant-type", JWT_BEARER, "--auth-method", "client_secret_post")
    assert code == 0 and json.loads(out)["grant_types"] == [JWT_BEARER]


def test_create_a_public_device_client(url: str) -> None:
    """RFC 8628 §5.4: a device client may be public (the user approves each request on the
    verification page); it needs no redirect URI."""
    device = "urn:ietf:params:oauth:grant-type:device_code"
    code, out = create(url, "--name", "tv", "--auth-method", "none", "--grant-type", device,
                       "--grant-type", "refresh_token")
    assert code == 0, out
    body = json.loads(out)
    assert body["grant_types"] == [device, "refresh_token"] and body["redirect_uris"] == []
    assert "client_secret" not in body and body["token_endpoint_auth_method"] == "none"
