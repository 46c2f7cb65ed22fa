"""Client authentication (RFC 6749 §2.3.1, OAuth 2.1 §2.4) and registration (RFC 7591)."""

from __future__ import annotations

import base64

import httpx
import pytest

from tests.helpers import FrozenClock, exchange, register


def basic(raw: bytes) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(raw).decode()}


TOKEN_FORM = {"grant_type": "authorization_code", "code": "x", "code_verifier": "v" * 43}


async def test_client_auth_registered_method_enforced(http: httpx.AsyncClient) -> None:
    """OAuth 2.1 §2.4: a `none` client sending a secret, or a confidential one without → 401."""
    public = await register(http)
    response = await http.post("/token", data={**TOKEN_FORM, "client_id": public.client_id, "client_secret": "s"})
    assert response.status_code == 401 and response.json()["error"] == "invalid_client"
    confidential = await register(http, token_endpoint_auth_method="client_secret_post")
    response = await http.post("/token", data={**TOKEN_FORM, "client_id": confidential.client_id})
    assert response.status_code == 401 and response.json()["error"] == "invalid_client"


async def test_client_auth_one_method_per_request(http: httpx.AsyncClient) -> None:
    """OAuth 2.1 §2.4: clients MUST NOT use more than one authentication method per request."""
    client = await register(http, token_endpoint_auth_method="client_secret_basic")
    secret = client.client_secret or ""
    response = await http.post("/token", headers=basic(f"{client.client_id}:{secret}".encode()),
                               data={**TOKEN_FORM, "client_secret": secret})
    assert response.status_code == 400 and response.json()["error"] == "invalid_request"


async def test_client_auth_basic_is_form_urlencoded_then_base64(http: httpx.AsyncClient) -> None:
    """RFC 6749 §2.3.1: id and secret are form-urlencoded before base64 (':' in them is %3A)."""
    client = await register(http, token_endpoint_auth_method="client_secret_basic")
    from urllib.parse import quote_plus

    raw = f"{quote_plus(client.client_id)}:{quote_plus(client.client_secret or '')}".encode()
    response = await http.post("/token", headers=basic(raw), data=TOKEN_FORM)
    assert response.status_code == 400 and response.json()["error"] == "invalid_grant"  # authenticated, bad code


@pytest.mark.parametrize("header", [
    "Basic %%%", "Basic " + base64.b64encode(b"nocolon").decode(), "Basic " + base64.b64encode(b":x").decode(),
    "Basic " + base64.b64encode(b"\xc3\x28:x").decode(), "Basic", "Basic =",
])
async def test_client_auth_malformed_basic_is_401_never_500(http: httpx.AsyncClient, header: str) -> None:
    """RFC 6749 §5.2: a failed Basic attempt answers 401 with WWW-Authenticate."""
    response = await http.post("/token", headers={"Authorization": header}, data=TOKEN_FORM)
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Basic")


async def test_client_auth_body_header_client_id_mismatch(http: httpx.AsyncClient) -> None:
    client = await register(http, token_endpoint_auth_method="client_secret_basic")
    response = await http.post("/token", headers=basic(f"{client.client_id}:{client.client_secret}".encode()),
                               data={**TOKEN_FORM, "client_id": "someone-else"})
    assert response.status_code == 401


async def test_client_auth_expired_secret_refused(http: httpx.AsyncClient, clock: FrozenClock) -> None:
    """RFC 7591 §3.2.1: client_secret_expires_at is enforced."""
    client = await register(http, token_endpoint_auth_method="client_secret_post")
    clock.advance(7_776_000)
    response = await exchange(http, client.client_id, "x", client_secret=client.client_secret)
    assert response.status_code == 401 and "expired" in response.json()["error_description"]


async def test_registration_1000_redirect_uris_refused(http: httpx.AsyncClient) -> None:
    uris = [f"https://app.example/cb{i}" for i in range(1000)]
    response = await http.post("/register", json={"redirect_uris": uris})
    assert response.status_code in (400, 413)


async def test_registration_1mb_client_name_refused(http: httpx.AsyncClient) -> None:
    response = await http.post("/register", json={"redirect_uris": ["https://a.example/cb"],
                                                   "client_name": "x" * 2**20})
    assert response.status_code == 413 and response.json()["error"] == "invalid_request"


async def test_registration_server_owned_fields_ignored(http: httpx.AsyncClient) -> None:
    """RFC 7591 §3.2.1: client_id, secrets and issue times are the server's."""
    response = await http.post("/register", json={"redirect_uris": ["https://a.example/cb"], "client_id": "admin",
                                                  "client_secret_expires_at": 0, "client_id_issued_at": 0})
    body = response.json()
    assert body["client_id"] != "admin" and body["client_secret_expires_at"] != 0 and body["client_id_issued_at"]


BAD_URI, BAD_META = "invalid_redirect_uri", "invalid_client_metadata"


@pytest.mark.parametrize("application_type,uris,error", [
    ("native", ["http://127.0.0.1:9/cb"], None), ("native", ["com.example.app:/cb"], None),
    ("native", ["https://app.example/cb"], None), ("native", ["http://localhost/cb", "https://app.example/cb"], None),
    ("web", ["https://app.example/cb"], None),
    ("web", ["http://127.0.0.1:9/cb"], BAD_URI), ("web", ["com.example.app:/cb"], BAD_URI),
    ("web", ["https://localhost/cb"], BAD_URI), ("web", ["https://127.0.0.1:8443/cb"], BAD_URI),
    ("web", ["https://[::1]/cb"], BAD_URI), ("web", ["https://dev.localhost/cb"], BAD_URI),
    ("web", ["https://app.example/cb", "http://localhost/cb"], BAD_URI),
    ("desktop", ["https://app.example/cb"], BAD_META), ("", ["https://app.example/cb"], BAD_META),
    (["web"], ["https://app.example/cb"], BAD_META),
])
async def test_registration_application_type_checked_against_redirects(
    http: httpx.AsyncClient, application_type: object, uris: list[str], error: str | None
) -> None:
    """MCP 2026-07-28 (SEP-837) / OpenID Registration §2: "web" clients redirect to https on a
    host other than localhost; "native" ones to loopback, a private-use scheme or (RFC 8252 §7.2)
    a claimed https URL; a contradiction is refused, an unknown type is invalid_client_metadata."""
    response = await http.post("/register", json={"redirect_uris": uris, "application_type": application_type,
                                                  "token_endpoint_auth_method": "none"})
    if error is None:
        assert response.status_code == 201 and response.json()["application_type"] == application_type
    else:
        assert response.status_code == 400 and response.json()["error"] == error


@pytest.mark.parametrize("uris,inferred", [
    (["http://127.0.0.1:33418/callback"], "native"), (["http://localhost/callback"], "native"),
    (["cursor://anysphere.cursor-retrieval/oauth/callback"], "native"),
    (["https://app.example/cb", "https://other.example/cb"], "web"),
    (["https://localhost:8443/cb"], "native"),
    (["https://app.example/cb", "http://127.0.0.1/cb"], "native"),
    (["https://app.example/cb", "com.example.app:/cb"], "native"),
])
async def test_registration_application_type_inferred_when_omitted(
    http: httpx.AsyncClient, uris: list[str], inferred: str
) -> None:
    """MCP 2026-07-28 (SEP-837): OIDC's default "web" "can conflict with native-style redirect
    URIs", and clients older than the field omit it; the type the redirect URIs imply is stored
    and returned (RFC 7591 §3.2.1: the server may "substitute them with suitable values" and
    MUST "return all registered metadata"). Mixed sets are native: only that type admits them all."""
    client = await register(http, redirect_uris=uris)
    assert client.body["application_type"] == inferred
    again = await http.post("/register", json={**client.body, "client_id": None, "client_id_issued_at": None})
    assert again.status_code == 201 and again.json()["application_type"] == inferred
