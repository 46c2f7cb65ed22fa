"""The client_credentials grant (RFC 6749 §4.4, OAuth 2.1 §4.2, the MCP OAuth client credentials
extension): who may use it, what the token says, and what registration hands out."""

from __future__ import annotations

import base64
import dataclasses
from collections.abc import AsyncIterator
from typing import Any

import httpx
import jwt
import pytest

from oauth_server import MemoryOAuthServerModel, OAuthServer, OAuthServerSettings, clients, keys
from oauth_server.records import Client
from tests.conftest import ISSUER, RESOURCE, SCOPES, build_app
from tests.helpers import FrozenClock, register

OTHER_RESOURCE = "http://localhost:8000/other"


def settings(**changes: Any) -> OAuthServerSettings:
    return OAuthServerSettings(issuer_url=ISSUER, resource_server_url=RESOURCE, authorization_url=f"{ISSUER}/consent",
                               scopes_supported=(*SCOPES, "offline_access"), default_scopes=("mcp:tools",),
                               extra_resources=(OTHER_RESOURCE,), **changes)


@pytest.fixture
async def http(server: OAuthServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=build_app(server)), base_url=ISSUER) as client:
        yield client


@pytest.fixture
def server(model: MemoryOAuthServerModel, clock: FrozenClock) -> OAuthServer:
    return OAuthServer(model, settings(), clock=clock)


async def machine(model: MemoryOAuthServerModel, clock: FrozenClock, **metadata: Any) -> tuple[str, str]:
    """A client_credentials client as the operator CLI creates it; (client_id, secret)."""
    fields: dict[str, Any] = {"grant_types": ["client_credentials"], "scope": "mcp:tools mcp:prompts"}
    fields.update(metadata)
    client, secret = clients.build_client(fields, settings(), int(clock.now), allow_client_credentials=True)
    await model.save_client(client)
    assert secret is not None
    return client.client_id, secret


def basic(client_id: str, secret: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()}


async def token(http: httpx.AsyncClient, client_id: str, secret: str, **form: str) -> httpx.Response:
    return await http.post("/token", data={"grant_type": "client_credentials", **form},
                           headers=basic(client_id, secret))


async def test_client_credentials_token_subject_is_the_client(
    http: httpx.AsyncClient, model: MemoryOAuthServerModel, clock: FrozenClock
) -> None:
    """RFC 9068 §2.2: with no resource owner, ``sub`` identifies the client; RFC 7662 §2.2 says so
    in introspection; the token is bound to our MCP resource when none is sent (RFC 8707)."""
    client_id, secret = await machine(model, clock)
    response = await token(http, client_id, secret, scope="mcp:tools")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["token_type"] == "Bearer" and body["scope"] == "mcp:tools"
    answer = (await http.post("/introspect", data={"token": body["access_token"]},
                              headers=basic(client_id, secret))).json()
    assert answer["active"] is True and answer["sub"] == client_id and answer["client_id"] == client_id
    assert answer["aud"] == RESOURCE
    grants = await model.list_grants(client_id=client_id)
    assert len(grants) == 1 and grants[0].subject == client_id  # design.md: every credential has a grant


async def test_client_credentials_issues_no_refresh_token(
    http: httpx.AsyncClient, model: MemoryOAuthServerModel, clock: FrozenClock
) -> None:
    """RFC 6749 §4.4.3: "A refresh token SHOULD NOT be included", even for a client registered for
    refresh_token that asks for offline_access (dropped: it only asks for a refresh token)."""
    client_id, secret = await machine(model, clock, grant_types=["client_credentials", "refresh_token"],
                                      scope="mcp:tools offline_access")
    body = (await token(http, client_id, secret, scope="mcp:tools offline_access")).json()
    assert "refresh_token" not in body and body["scope"] == "mcp:tools"


async def test_client_credentials_public_client_is_unauthorized(
    http: httpx.AsyncClient, model: MemoryOAuthServerModel
) -> None:
    """OAuth 2.1 §4.2: confidential clients only. A public client stored with the grant anyway
    (a custom model, an old row) still gets ``unauthorized_client``."""
    await model.save_client(Client(client_id="public-machine", redirect_uris=(), token_endpoint_auth_method="none",
                                   grant_types=("client_credentials",), response_types=()))
    response = await http.post("/token", data={"grant_type": "client_credentials", "client_id": "public-machine"})
    assert response.status_code == 400 and response.json()["error"] == "unauthorized_client"


async def test_client_credentials_needs_the_registered_grant(http: httpx.AsyncClient) -> None:
    """RFC 6749 §5.2 ``unauthorized_client``: a confidential client registered for the code grant
    only cannot turn itself into a machine identity."""
    registered = await register(http, token_endpoint_auth_method="client_secret_basic")
    assert registered.client_secret is not None
    response = await token(http, registered.client_id, registered.client_secret)
    assert response.status_code == 400 and response.json()["error"] == "unauthorized_client"


async def test_client_credentials_wrong_secret_is_invalid_client(
    http: httpx.AsyncClient, model: MemoryOAuthServerModel, clock: FrozenClock
) -> None:
    client_id, _ = await machine(model, clock)
    response = await token(http, client_id, "not-the-secret")
    assert response.status_code == 401 and response.json()["error"] == "invalid_client"


async def test_client_credentials_scope_limited_to_registration(
    http: httpx.AsyncClient, model: MemoryOAuthServerModel, clock: FrozenClock
) -> None:
    """RFC 6749 §3.3 / §5.2 ``invalid_scope``: never beyond the client's registered scope; none
    asked means all of it."""
    client_id, secret = await machine(model, clock)
    escalation = await token(http, client_id, secret, scope="mcp:tools mcp:admin")
    assert escalation.status_code == 400 and escalation.json()["error"] == "invalid_scope"
    assert (await token(http, client_id, secret)).json()["scope"] == "mcp:tools mcp:prompts"
    unregistered_scope, other_secret = await machine(model, clock, scope=None)
    assert (await token(http, unregistered_scope, other_secret)).json()["scope"] == "mcp:tools"  # default_scopes
    refused = await token(http, unregistered_scope, other_secret, scope="mcp:admin")
    assert refused.json()["error"] == "invalid_scope"


async def test_client_credentials_resource_bound(
    http: httpx.AsyncClient, model: MemoryOAuthServerModel, clock: FrozenClock
) -> None:
    """RFC 8707 §2: one resource of ours, the token bound to it; another is ``invalid_target``."""
    client_id, secret = await machine(model, clock)
    other = (await token(http, client_id, secret, resource=OTHER_RESOURCE)).json()
    answer = (await http.post("/introspect", data={"token": other["access_token"]},
                              headers=basic(client_id, secret))).json()
    assert answer["aud"] == OTHER_RESOURCE
    for bad in ("https://evil.example/mcp", "not a uri"):
        response = await token(http, client_id, secret, resource=bad)
        assert response.status_code == 400 and response.json()["error"] == "invalid_target"
    two = await http.post("/token", data={"grant_type": "client_credentials", "resource": [RESOURCE, OTHER_RESOURCE]},
                          headers=basic(client_id, secret))
    assert two.json()["error"] == "invalid_target"
    # A token for the other resource is refused at /mcp (audience binding).
    assert (await http.post("/mcp", headers={"Authorization": f"Bearer {other['access_token']}"})).status_code == 401


async def test_client_credentials_revocation_ends_its_grant(
    http: httpx.AsyncClient, model: MemoryOAuthServerModel, clock: FrozenClock
) -> None:
    """RFC 7009: revoking the token revokes the grant it was issued in; the MCP endpoint refuses it."""
    client_id, secret = await machine(model, clock)
    access = (await token(http, client_id, secret)).json()["access_token"]
    assert (await http.post("/mcp", headers={"Authorization": f"Bearer {access}"})).json()["subject"] == client_id
    assert (await http.post("/revoke", data={"token": access}, headers=basic(client_id, secret))).status_code == 200
    assert (await http.post("/mcp", headers={"Authorization": f"Bearer {access}"})).status_code == 401
    grants = await model.list_grants(client_id=client_id, include_revoked=True)
    assert grants[0].revoked_at is not None


async def test_client_credentials_jwt_names_the_client_as_subject(model: MemoryOAuthServerModel,
                                                                  clock: FrozenClock) -> None:
    """RFC 9068 §2.2: a JWT access token from this grant has ``sub`` = ``client_id`` = the client."""
    key = keys.generate("ES256")
    server = OAuthServer(model, settings(access_token_format="jwt", signing_keys=(keys.to_pem(key).decode(),)),
                         clock=clock)
    client_id, secret = await machine(model, clock)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=build_app(server)), base_url=ISSUER) as http:
        access = (await token(http, client_id, secret)).json()["access_token"]
    claims = jwt.decode(access, options={"verify_signature": False})
    assert claims["sub"] == client_id and claims["client_id"] == client_id and claims["aud"] == RESOURCE


async def test_dcr_refuses_client_credentials_by_default(http: httpx.AsyncClient) -> None:
    """Anyone may register (RFC 7591), so registration must not hand out machine identities unless
    the operator turned ``dcr_client_credentials`` on: ``invalid_client_metadata`` (§3.2.2)."""
    response = await http.post("/register", json={"grant_types": ["client_credentials"],
                                                  "token_endpoint_auth_method": "client_secret_basic"})
    assert response.status_code == 400 and response.json()["error"] == "invalid_client_metadata"
    registered = await register(http, token_endpoint_auth_method="client_secret_basic")
    update = {**registered.body, "grant_types": ["authorization_code", "client_credentials"]}
    update.pop("registration_access_token")
    update.pop("registration_client_uri")
    response = await http.put(f"/register/{registered.client_id}", json=update,
                              headers={"Authorization": f"Bearer {registered.body['registration_access_token']}"})
    assert response.status_code == 400 and response.json()["error"] == "invalid_client_metadata"  # RFC 7592 §2.2


async def test_dcr_client_credentials_when_enabled(model: MemoryOAuthServerModel, clock: FrozenClock) -> None:
    """With ``dcr_client_credentials``: a confidential machine client registers without redirect
    URIs and gets a token; a public one is still refused."""
    server = OAuthServer(model, settings(dcr_client_credentials=True), clock=clock)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=build_app(server)), base_url=ISSUER) as http:
        body = (await http.post("/register", json={"grant_types": ["client_credentials"],
                                                   "scope": "mcp:tools"})).json()
        assert body["grant_types"] == ["client_credentials"] and body["redirect_uris"] == []
        assert body["response_types"] == []
        assert (await token(http, body["client_id"], body["client_secret"])).status_code == 200
        public = await http.post("/register", json={"grant_types": ["client_credentials"],
                                                    "token_endpoint_auth_method": "none"})
        assert public.status_code == 400 and public.json()["error"] == "invalid_client_metadata"
        # RFC 7591 §2.1/§3.2.1: "code" goes with authorization_code only; the SDK's default is replaced.
        sdk_default = await http.post("/register", json={"grant_types": ["client_credentials"],
                                                         "response_types": ["code"]})
        assert sdk_default.status_code == 201 and sdk_default.json()["response_types"] == []
        token_response = await http.post("/register", json={"grant_types": ["client_credentials"],
                                                            "response_types": ["token"]})
        assert token_response.json()["error"] == "invalid_client_metadata"


async def test_machine_client_cannot_authorize(http: httpx.AsyncClient, model: MemoryOAuthServerModel,
                                               clock: FrozenClock) -> None:
    """A machine client has no redirect URI, so /authorize shows an error and redirects nowhere."""
    client_id, _ = await machine(model, clock)
    response = await http.get("/authorize", params={"response_type": "code", "client_id": client_id,
                                                    "redirect_uri": "http://127.0.0.1:1/cb",
                                                    "code_challenge": "x" * 43, "code_challenge_method": "S256"})
    assert response.status_code == 400 and "location" not in response.headers


def test_machine_client_record_has_no_redirect_or_response_types() -> None:
    """RFC 7591 §2 / §2.1: no redirect-based grant, so no redirect URIs and no response types."""
    client, _ = clients.build_client({"grant_types": ["client_credentials"]}, settings(), 0,
                                     allow_client_credentials=True)
    assert dataclasses.asdict(client)["redirect_uris"] == () and client.response_types == ()
    assert client.token_endpoint_auth_method == "client_secret_basic" and client.client_secret_digest is not None
