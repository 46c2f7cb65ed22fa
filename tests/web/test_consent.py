"""The consent page and its confirm handler: anti-forgery, single use, headers, escaping."""

from __future__ import annotations

import httpx

from tests.helpers import REDIRECT, form_fields, open_consent, query, register


async def test_page_headers_and_escaping(http: httpx.AsyncClient) -> None:
    client = await register(http, client_name="<script>alert(1)</script>")
    response = await http.get("/authorize", params={
        "response_type": "code", "client_id": client.client_id, "redirect_uri": REDIRECT, "state": "s",
        "code_challenge": "a" * 43, "code_challenge_method": "S256", "scope": "mcp:tools"})
    page = await http.get(response.headers["location"])
    assert page.status_code == 200
    assert page.headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert page.headers["cache-control"] == "no-store"
    assert "<script>alert(1)</script>" not in page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
    assert "127.0.0.1:33418" in page.text           # the redirect host is shown
    assert "mcp:tools" in page.text and "http://localhost:8000/mcp" in page.text
    assert "runs on your own computer" in page.text  # localhost-only warning


async def test_approve_redirects_with_code_state_and_iss(http: httpx.AsyncClient) -> None:
    client = await register(http)
    _, fields = await open_consent(http, client.client_id)
    response = await http.post("/consent", data={**fields, "decision": "approve"})
    assert response.status_code == 303
    params = query(response.headers["location"])
    assert response.headers["location"].startswith(REDIRECT + "?")
    assert len(params["code"]) >= 43 and params["state"] == "xyz" and params["iss"] == "http://localhost:8000"


async def test_deny_redirects_access_denied(http: httpx.AsyncClient) -> None:
    client = await register(http)
    _, fields = await open_consent(http, client.client_id)
    response = await http.post("/consent", data={**fields, "decision": "deny"})
    params = query(response.headers["location"])
    assert params["error"] == "access_denied" and params["state"] == "xyz" and params["iss"]
    assert "code" not in params


async def test_consent_is_single_use(http: httpx.AsyncClient) -> None:
    client = await register(http)
    _, fields = await open_consent(http, client.client_id)
    assert (await http.post("/consent", data={**fields, "decision": "approve"})).status_code == 303
    again = await http.post("/consent", data={**fields, "decision": "approve"})
    assert again.status_code == 400 and "location" not in again.headers


async def test_form_of_request_a_cannot_confirm_request_b(http: httpx.AsyncClient) -> None:
    client = await register(http)
    _, fields_a = await open_consent(http, client.client_id)
    _, fields_b = await open_consent(http, client.client_id)
    forged = {"request_id": fields_b["request_id"], "csrf_token": fields_a["csrf_token"], "decision": "approve"}
    response = await http.post("/consent", data=forged)
    assert response.status_code == 403 and "location" not in response.headers
    # The real form for B still works: a forgery attempt does not burn the request.
    assert (await http.post("/consent", data={**fields_b, "decision": "approve"})).status_code == 303


async def test_another_browser_cannot_confirm(http: httpx.AsyncClient, server: object) -> None:
    """RFC 6749 §10.12: an attacker who starts a request cannot have the victim's browser approve it."""
    client = await register(http)
    _, fields = await open_consent(http, client.client_id)  # the attacker's browser
    victim = httpx.AsyncClient(transport=http._transport, base_url=str(http.base_url),
                               headers={"x-test-user": "victim"})
    async with victim:
        # Cross-site POST: SameSite=Lax means no cookie travels; or the victim's own cookie differs.
        response = await victim.post("/consent", data={**fields, "decision": "approve"})
        assert response.status_code == 403
        await victim.get("/authorize", params={"client_id": client.client_id})  # victim gets a cookie
        response = await victim.post("/consent", data={**fields, "decision": "approve"})
        assert response.status_code == 403


async def test_tampered_hidden_fields_are_refused(http: httpx.AsyncClient) -> None:
    client = await register(http)
    _, fields = await open_consent(http, client.client_id)
    tampered = {**fields, "csrf_token": fields["csrf_token"][:-1] + ("0" if fields["csrf_token"][-1] != "0" else "1")}
    assert (await http.post("/consent", data={**tampered, "decision": "approve"})).status_code == 403
    assert (await http.post("/consent", data={**fields, "request_id": "x" * 43, "decision": "approve"})).status_code \
        == 400


async def test_no_signed_in_user_shows_the_page_again_and_keeps_the_request(http: httpx.AsyncClient) -> None:
    client = await register(http)
    _, fields = await open_consent(http, client.client_id)
    response = await http.post("/consent", data={**fields, "decision": "approve"}, headers={"x-test-user": ""})
    assert response.status_code == 401 and "location" not in response.headers
    assert form_fields(response.text)["request_id"] == fields["request_id"]
    assert (await http.post("/consent", data={**fields, "decision": "approve"})).status_code == 303


async def test_consent_confirm_accepts_only_post(http: httpx.AsyncClient) -> None:
    assert (await http.put("/consent")).status_code == 405
    assert (await http.delete("/consent")).status_code == 405


async def test_user_scopes_narrow_the_grant(server: object) -> None:
    from fastapi import FastAPI

    from oauth_server import mcp_auth_router
    from tests.conftest import ISSUER, signed_in_user

    app = FastAPI()
    app.include_router(mcp_auth_router(server, get_user=signed_in_user,  # type: ignore[arg-type]
                                       user_scopes=lambda subject: {"mcp:tools"}))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=ISSUER,
                                 headers={"x-test-user": "guest"}) as http:
        client = await register(http)
        _, fields = await open_consent(http, client.client_id, scope="mcp:tools mcp:admin")
        response = await http.post("/consent", data={**fields, "decision": "approve"})
        code = query(response.headers["location"])["code"]
        from tests.helpers import exchange

        token = (await exchange(http, client.client_id, code)).json()
        assert token["scope"] == "mcp:tools"
        # A user allowed none of the requested scopes gets invalid_scope, not an empty token.
        _, fields = await open_consent(http, client.client_id, scope="mcp:admin")
        response = await http.post("/consent", data={**fields, "decision": "approve"})
        assert query(response.headers["location"])["error"] == "invalid_scope"
