"""The connected-apps page over HTTP: the listing, revoking, sign-in, headers, overriding.

The security rules (only one's own grants, anti-forgery, no change on GET, tokens refused after
a revocation) are in ``tests/security/test_connected_apps.py``.
"""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from oauth_server import (
    Client,
    Grant,
    MemoryOAuthServerModel,
    OAuthServer,
    StorageUnavailable,
    connected_apps,
    mcp_auth_router,
)
from oauth_server.web.endpoints.connected_apps import when
from oauth_server.web.templating import Templates
from tests.conftest import ISSUER, RESOURCE, signed_in_user
from tests.helpers import FrozenClock, form_fields, register, tokens_for

PAGE = "/connected-apps"


def grant_ids(html: str) -> list[str]:
    """The grant ids of the revoke buttons, in page order."""
    return re.findall(r'<button type="submit" name="grant_id" value="([^"]+)"', html)


async def revoke(http: httpx.AsyncClient, grant_id: str) -> httpx.Response:
    """Post the revoke form with the token a page shows this browser (a user without apps sees
    no form, but the token is the same for every form of the page)."""
    await http.get(PAGE)
    token = connected_apps.form_token(http.cookies["mcp_oauth_browser"])
    return await http.post(PAGE, data={"csrf_token": token, "grant_id": grant_id})


async def test_lists_each_app_the_user_granted_newest_first(http: httpx.AsyncClient, clock: FrozenClock) -> None:
    first = await register(http, client_name="Notes app")
    await tokens_for(http, first.client_id, scope="mcp:tools mcp:prompts")
    clock.advance(120)
    second = await register(http, client_name="Calendar")
    await tokens_for(http, second.client_id)
    page = await http.get(PAGE)
    assert page.status_code == 200
    text = page.text
    assert "Signed in as <strong>alice</strong>" in text
    assert text.index("Calendar") < text.index("Notes app")  # newest first
    assert first.client_id in text and second.client_id in text
    assert "<code>mcp:tools</code>, <code>mcp:prompts</code>" in text
    assert RESOURCE in text
    assert "Granted 2027-01-15 08:00 UTC" in text and "Granted 2027-01-15 08:02 UTC" in text
    assert "Last used 2027-01-15 08:00 UTC" in text  # the code was redeemed then
    assert len(grant_ids(text)) == 2


async def test_another_users_apps_are_not_listed(http: httpx.AsyncClient) -> None:
    client = await register(http, client_name="Bob's tool")
    http.headers["x-test-user"] = "bob"
    await tokens_for(http, client.client_id)
    http.headers["x-test-user"] = "alice"
    page = await http.get(PAGE)
    assert "Bob&#39;s tool" not in page.text and grant_ids(page.text) == []
    assert "No applications are connected to your account." in page.text


async def test_last_used_is_the_last_refresh(http: httpx.AsyncClient, clock: FrozenClock) -> None:
    client = await register(http)
    issued = await tokens_for(http, client.client_id)
    clock.advance(3600)
    refreshed = await http.post("/token", data={"grant_type": "refresh_token", "client_id": client.client_id,
                                                "refresh_token": issued["refresh_token"]})
    assert refreshed.status_code == 200
    clock.advance(600)
    await http.post("/mcp", headers={"authorization": f"Bearer {refreshed.json()['access_token']}"})
    page = await http.get(PAGE)
    # A bearer check is no "use": only issuing tokens is recorded.
    assert "Last used 2027-01-15 09:00 UTC" in page.text


async def test_revoking_own_app_removes_it_and_redirects_back(http: httpx.AsyncClient, clock: FrozenClock) -> None:
    kept, ended = await register(http, client_name="Kept"), await register(http, client_name="Ended")
    await tokens_for(http, kept.client_id)
    clock.advance(1)
    await tokens_for(http, ended.client_id)
    page = await http.get(PAGE)
    [ended_grant, kept_grant] = grant_ids(page.text)
    response = await revoke(http, ended_grant)
    assert response.status_code == 303 and response.headers["location"] == PAGE
    after = await http.get(PAGE)
    assert grant_ids(after.text) == [kept_grant]
    assert "Ended" not in after.text and "Kept" in after.text


async def test_expired_grants_are_not_listed(http: httpx.AsyncClient, server: OAuthServer, clock: FrozenClock) -> None:
    client = await register(http)
    await tokens_for(http, client.client_id)
    settings = server.settings
    clock.advance(settings.authorization_code_lifetime + settings.refresh_token_absolute_lifetime
                  + settings.access_token_lifetime)
    assert grant_ids((await http.get(PAGE)).text) == []


async def test_page_has_the_consent_pages_headers_and_browser_cookie(http: httpx.AsyncClient) -> None:
    page = await http.get(PAGE)
    assert page.headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert page.headers["cache-control"] == "no-store"
    assert page.headers["referrer-policy"] == "no-referrer"
    cookie = page.headers["set-cookie"]
    assert "mcp_oauth_browser=" in cookie and "HttpOnly" in cookie and "SameSite=lax" in cookie


async def test_client_name_is_escaped(http: httpx.AsyncClient) -> None:
    client = await register(http, client_name="<script>alert(1)</script>")
    await tokens_for(http, client.client_id)
    page = await http.get(PAGE)
    assert "<script>alert(1)</script>" not in page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text


async def test_not_signed_in_gets_the_sign_in(http: httpx.AsyncClient) -> None:
    client = await register(http)
    await tokens_for(http, client.client_id)
    del http.headers["x-test-user"]
    page = await http.get(PAGE)
    assert page.status_code == 200
    assert "Sign in to see the applications connected to your account." in page.text
    assert grant_ids(page.text) == []
    posted = await http.post(PAGE, data={"csrf_token": form_fields(page.text)["csrf_token"]})
    assert posted.status_code == 401 and "Sign in to manage your connected apps." in posted.text


async def test_signing_in_through_the_form_redirects_to_the_page(http: httpx.AsyncClient) -> None:
    """No ``grant_id``: the form only signs in (the app's get_user reads the form) and 303s back."""
    del http.headers["x-test-user"]
    page = await http.get(PAGE)
    http.headers["x-test-user"] = "alice"  # what the posted sign-in proves
    response = await http.post(PAGE, data={"csrf_token": form_fields(page.text)["csrf_token"]})
    assert response.status_code == 303 and response.headers["location"] == PAGE


async def test_other_methods_are_405(http: httpx.AsyncClient) -> None:
    response = await http.delete(PAGE)
    assert response.status_code == 405 and response.headers["allow"] == "GET, HEAD, POST"


async def test_no_page_without_get_user(server: OAuthServer) -> None:
    app = FastAPI()
    app.include_router(mcp_auth_router(server))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=ISSUER) as http:
        assert (await http.get(PAGE)).status_code == 404
        assert (await http.post(PAGE, data={"csrf_token": "x"})).status_code in (404, 405)


async def test_template_is_overridable(server: OAuthServer, tmp_path: Path) -> None:
    (tmp_path / "oauth_server").mkdir()
    (tmp_path / "oauth_server" / "connected_apps.html").write_text(
        "<p>Our own page for {{ user }}: {{ apps|length }} apps</p>")
    app = FastAPI()
    app.include_router(mcp_auth_router(server, get_user=signed_in_user, templates_directory=tmp_path))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=ISSUER,
                                 headers={"x-test-user": "alice"}) as http:
        page = await http.get(PAGE)
    assert page.text == "<p>Our own page for alice: 0 apps</p>"
    assert page.headers["x-frame-options"] == "DENY"


def test_a_metadata_document_client_is_shown_by_its_host() -> None:
    """draft-ietf-oauth-client-id-metadata-document §8.1: the name is the client's claim, the
    URL's host what the fetch proved; the page shows both."""
    url = "https://app.example.com/oauth/client.json"
    grant = Grant(grant_id="g", client_id=url, subject="alice", scopes=("mcp:tools",), resource=RESOURCE,
                  created_at=1_800_000_000, expires_at=1_900_000_000)
    document = Client(client_id=url, redirect_uris=("https://app.example.com/cb",), client_name="Trusted App",
                      metadata_document_expires_at=1_800_000_600)
    app = connected_apps.describe(grant, document)
    assert (app.client_name, app.client_host, app.last_used_at) == ("Trusted App", "app.example.com", None)
    assert connected_apps.describe(grant, None).client_name == url  # no cached record: the URL itself
    page = Templates().render("oauth_server/connected_apps.html", apps=[app], user="alice", error=None,
                              when=when, action=PAGE, csrf_token="t")
    html = bytes(page.body).decode()
    assert "Identified by <strong>app.example.com</strong>" in html and "Trusted App" in html
    assert "Last used not recorded" in html


async def test_an_outage_recording_the_use_still_hands_out_the_stored_tokens(
        http: httpx.AsyncClient, model: MemoryOAuthServerModel, caplog: pytest.LogCaptureFixture) -> None:
    """"Last used" is bookkeeping: tokens already stored are not withheld over it (a model that
    records it in a separate step: without ``save_tokens_recording_use``, the fold)."""

    async def unavailable(grant_id: str, now: int) -> None:
        raise StorageUnavailable("database down")

    async def not_folded(*_: object) -> bool:
        raise NotImplementedError

    model.record_grant_use = unavailable  # type: ignore[method-assign]
    model.save_tokens_recording_use = not_folded  # type: ignore[method-assign,assignment]
    client = await register(http)
    issued = await tokens_for(http, client.client_id)
    assert (await http.post("/mcp", headers={"authorization": f"Bearer {issued['access_token']}"})).status_code == 200
    assert "could not record the use of grant" in caplog.text
