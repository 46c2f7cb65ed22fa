"""RFC 7592 client management: the registration access token guards read, update and delete."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import httpx

from oauth_server import MemoryOAuthServerModel, tokens
from tests.conftest import ISSUER
from tests.helpers import FrozenClock, Registered, exchange, register, tokens_for


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def manage(registered: Registered) -> tuple[str, dict[str, str]]:
    """The client's configuration path and the headers that authorize it."""
    uri = registered.body["registration_client_uri"]
    return uri.removeprefix(ISSUER), bearer(registered.body["registration_access_token"])


async def test_client_management_registration_returns_token_and_uri(
    http: httpx.AsyncClient, model: MemoryOAuthServerModel
) -> None:
    """RFC 7592 §3: registration returns registration_access_token and registration_client_uri;
    the token is a 256-bit credential stored only as its digest."""
    client = await register(http)
    token = client.body["registration_access_token"]
    assert len(token) >= 43
    assert client.body["registration_client_uri"] == f"{ISSUER}/register/{quote(client.client_id, safe='')}"
    stored = await model.get_client(client.client_id)
    assert stored is not None and stored.registration_access_token_digest == tokens.digest(token)


async def test_client_management_read(http: httpx.AsyncClient) -> None:
    """RFC 7592 §2.1: GET returns the client information, without the token or the secret."""
    client = await register(http, token_endpoint_auth_method="client_secret_basic")
    path, headers = manage(client)
    response = await http.get(path, headers=headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["client_id"] == client.client_id and body["client_name"] == "Test client"
    assert body["registration_client_uri"] == client.body["registration_client_uri"]
    assert "registration_access_token" not in body and "client_secret" not in body
    assert body["client_secret_expires_at"] == client.body["client_secret_expires_at"]
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["access-control-allow-origin"] == "*"


async def test_client_management_token_required_and_bound_to_its_client(http: httpx.AsyncClient) -> None:
    """RFC 7592 §2.1-2.3 / RFC 6750 §3: no token, a wrong token, another client's token and an
    unknown client are all 401 invalid_token with a Bearer challenge."""
    alice, bob = await register(http), await register(http)
    path, alice_headers = manage(alice)
    _, bob_headers = manage(bob)
    attempts = [
        (path, {}), (path, bearer("wrong")), (path, bob_headers),
        ("/register/no-such-client", alice_headers), (path, {"Authorization": "Basic YTpi"}),
    ]
    for target, headers in attempts:
        for method in ("GET", "DELETE"):
            response = await http.request(method, target, headers=headers)
            assert response.status_code == 401, (method, target, headers)
            assert response.json()["error"] == "invalid_token"
            assert response.headers["www-authenticate"].startswith("Bearer")
        put = await http.put(target, headers=headers, json={**alice.body, "client_name": "x"})
        assert put.status_code == 401
    assert (await http.get(path, headers=alice_headers)).status_code == 200  # untouched


async def test_client_management_update_replaces_metadata(http: httpx.AsyncClient) -> None:
    """RFC 7592 §2.2: PUT replaces the metadata (validated as at registration); the secret stays."""
    client = await register(http, token_endpoint_auth_method="client_secret_post")
    path, headers = manage(client)
    metadata = {k: v for k, v in client.body.items() if k not in ("client_name", "contacts")}
    metadata["client_uri"] = "https://app.example/"
    response = await http.put(path, headers=headers, json=metadata)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["client_uri"] == "https://app.example/" and "client_name" not in body
    assert "client_secret" not in body  # the old secret is kept, not reissued
    read = (await http.get(path, headers=headers)).json()
    assert read == body
    authenticated = await exchange(http, client.client_id, "x", client_secret=client.client_secret)
    assert authenticated.json()["error"] == "invalid_grant"  # the secret still authenticates
    bad = await http.put(path, headers=headers, json={**metadata, "redirect_uris": ["javascript:alert(1)"]})
    assert bad.status_code == 400


async def test_client_management_update_cannot_change_client_id_or_server_fields(
    http: httpx.AsyncClient, model: MemoryOAuthServerModel
) -> None:
    """RFC 7592 §2.2: client_id must match, a sent client_secret must match, and server-owned
    fields (issued-at, secret expiry, registration token and URI) are ignored."""
    client = await register(http, token_endpoint_auth_method="client_secret_basic")
    path, headers = manage(client)
    before = await model.get_client(client.client_id)
    for changed in ({"client_id": "mine-now"}, {"client_id": None}, {"client_secret": "guess"}):
        payload = {k: v for k, v in {**client.body, **changed}.items() if v is not None}
        response = await http.put(path, headers=headers, json=payload)
        assert response.status_code == 400 and response.json()["error"] == "invalid_client_metadata"
    grab: dict[str, Any] = {**client.body, "client_id_issued_at": 1, "client_secret_expires_at": 0,
                            "registration_access_token": "chosen", "registration_client_uri": "https://evil.example/"}
    response = await http.put(path, headers=headers, json=grab)
    assert response.status_code == 200, response.text
    after = await model.get_client(client.client_id)
    assert before is not None and after is not None
    assert after.client_id_issued_at == before.client_id_issued_at
    assert after.client_secret_expires_at == before.client_secret_expires_at
    assert after.client_secret_digest == before.client_secret_digest
    assert after.registration_access_token_digest == before.registration_access_token_digest
    assert response.json()["registration_client_uri"] == client.body["registration_client_uri"]
    assert (await http.get(path, headers=bearer("chosen"))).status_code == 401


async def test_client_management_delete_revokes_everything(http: httpx.AsyncClient) -> None:
    """RFC 7592 §2.3: DELETE → 204; the client's access tokens fail the bearer check, its refresh
    tokens fail at /token, and the client can no longer authenticate or be managed."""
    client = await register(http)
    path, headers = manage(client)
    issued = await tokens_for(http, client.client_id)
    assert (await http.post("/mcp", headers=bearer(issued["access_token"]))).status_code == 200
    response = await http.delete(path, headers=headers)
    assert response.status_code == 204 and response.content == b""
    assert (await http.post("/mcp", headers=bearer(issued["access_token"]))).status_code == 401
    refresh = await http.post("/token", data={"grant_type": "refresh_token", "client_id": client.client_id,
                                              "refresh_token": issued["refresh_token"]})
    assert refresh.status_code == 401 and refresh.json()["error"] == "invalid_client"
    assert (await http.get(path, headers=headers)).status_code == 401
    assert (await http.delete(path, headers=headers)).status_code == 401


async def test_client_management_deeply_nested_put_is_400(http: httpx.AsyncClient) -> None:
    """RFC 8259 §9 (json_input): a deeply nested update body is a 400, never a 500."""
    client = await register(http)
    path, headers = manage(client)
    body = '{"client_id": "x", "contacts": ' + "[" * 5000 + "]" * 5000 + "}"
    response = await http.put(path, headers={**headers, "Content-Type": "application/json"}, content=body)
    assert response.status_code == 400 and response.json()["error"] == "invalid_client_metadata"


async def test_client_management_expired_secret_says_register_again(
    http: httpx.AsyncClient, clock: FrozenClock
) -> None:
    """RFC 7591 §3.2.1 client_secret_expires_at: the refusal tells the client how to recover."""
    client = await register(http, token_endpoint_auth_method="client_secret_post")
    clock.advance(client.body["client_secret_expires_at"] - clock.now)
    response = await exchange(http, client.client_id, "x", client_secret=client.client_secret)
    assert response.status_code == 401 and response.json()["error"] == "invalid_client"
    assert "register" in response.json()["error_description"]


async def test_client_management_update_to_a_secret_method_issues_a_secret(http: httpx.AsyncClient) -> None:
    """RFC 7592 §2.2 / RFC 7591 §3.2.1: a public client moving to client_secret_post receives a
    secret once, in the update response; moving back to none drops it."""
    client = await register(http)
    path, headers = manage(client)
    response = await http.put(path, headers=headers, json={**client.body, "token_endpoint_auth_method":
                                                          "client_secret_post"})
    assert response.status_code == 200, response.text
    secret = response.json()["client_secret"]
    assert (await exchange(http, client.client_id, "x", client_secret=secret)).json()["error"] == "invalid_grant"
    back = await http.put(path, headers=headers, json={**client.body, "token_endpoint_auth_method": "none"})
    assert back.status_code == 200 and "client_secret" not in back.json()
    refused = await exchange(http, client.client_id, "x", client_secret=secret)
    assert refused.status_code == 401
