"""The connected-apps page's rules: a user ends only their own grants, only through a form this
browser was shown, never by a GET, and a revoked grant's tokens are refused at once
(RFC 6749 §10.12, RFC 9700 §4.4 and §4.5, RFC 6750 §3.1, RFC 7009 §2)."""

from __future__ import annotations

import httpx

from tests.helpers import form_fields, register, tokens_for
from tests.web.test_connected_apps import PAGE, grant_ids, revoke


async def _alice_app(http: httpx.AsyncClient) -> tuple[str, dict[str, str]]:
    """Alice grants an app; her grant id and its tokens."""
    client = await register(http)
    issued = await tokens_for(http, client.client_id)
    [grant_id] = grant_ids((await http.get(PAGE)).text)
    return grant_id, {"client_id": client.client_id, **issued}


async def _still_works(http: httpx.AsyncClient, issued: dict[str, str]) -> bool:
    response = await http.post("/mcp", headers={"authorization": f"Bearer {issued['access_token']}"})
    return response.status_code == 200


async def test_revoked_grants_access_and_refresh_tokens_are_refused(http: httpx.AsyncClient) -> None:
    """RFC 9700 §4.5 / RFC 7009 §2: revoking ends every token of the grant at once: the access
    token gets 401 at the resource (RFC 6750 §3.1), the refresh token ``invalid_grant``."""
    grant_id, issued = await _alice_app(http)
    assert await _still_works(http, issued)
    assert (await revoke(http, grant_id)).status_code == 303
    refused = await http.post("/mcp", headers={"authorization": f"Bearer {issued['access_token']}"})
    assert refused.status_code == 401 and "invalid_token" in refused.headers["www-authenticate"]
    refreshed = await http.post("/token", data={"grant_type": "refresh_token", "client_id": issued["client_id"],
                                                "refresh_token": issued["refresh_token"]})
    assert refreshed.status_code == 400 and refreshed.json()["error"] == "invalid_grant"


async def test_a_user_cannot_revoke_another_users_grant(http: httpx.AsyncClient) -> None:
    """Bob posting Alice's grant id gets exactly the answer of an unknown id (no oracle for which
    grant ids exist), and Alice's app keeps working."""
    grant_id, issued = await _alice_app(http)
    http.headers["x-test-user"] = "bob"
    others = await revoke(http, grant_id)
    unknown = await revoke(http, "no-such-grant-id-at-all")
    assert others.status_code == unknown.status_code == 404
    assert others.text.replace(grant_id, "") == unknown.text.replace("no-such-grant-id-at-all", "")
    assert "No such app is connected to your account" in others.text
    http.headers["x-test-user"] = "alice"
    assert await _still_works(http, issued)
    assert grant_ids((await http.get(PAGE)).text) == [grant_id]


async def test_revoke_without_anti_forgery_token_is_refused(http: httpx.AsyncClient) -> None:
    """RFC 6749 §10.12: a POST without the page's token changes nothing (403)."""
    grant_id, issued = await _alice_app(http)
    response = await http.post(PAGE, data={"grant_id": grant_id})
    assert response.status_code == 403 and "location" not in response.headers
    assert await _still_works(http, issued)


async def test_revoke_with_a_wrong_anti_forgery_token_is_refused(http: httpx.AsyncClient) -> None:
    grant_id, issued = await _alice_app(http)
    for token in ("0" * 64, "", "x" * 5000):
        response = await http.post(PAGE, data={"grant_id": grant_id, "csrf_token": token})
        assert response.status_code == 403
    assert await _still_works(http, issued)


async def test_revoke_cross_site_without_the_browser_cookie_is_refused(http: httpx.AsyncClient) -> None:
    """RFC 9700 §4.4: a cross-site form post carries no SameSite=Lax cookie: refused, even with a
    token that was valid for the victim's browser."""
    grant_id, issued = await _alice_app(http)
    token = form_fields((await http.get(PAGE)).text)["csrf_token"]
    http.cookies.clear()
    response = await http.post(PAGE, data={"grant_id": grant_id, "csrf_token": token})
    assert response.status_code == 403
    assert await _still_works(http, issued)


async def test_anti_forgery_token_of_another_browser_is_refused(http: httpx.AsyncClient) -> None:
    """The attacker's own page gives them a token for their browser's secret, not the victim's."""
    grant_id, issued = await _alice_app(http)
    victim_cookies = dict(http.cookies)
    http.cookies.clear()
    attacker_token = form_fields((await http.get(PAGE)).text)["csrf_token"]
    http.cookies.clear()
    http.cookies.update(victim_cookies)
    response = await http.post(PAGE, data={"grant_id": grant_id, "csrf_token": attacker_token})
    assert response.status_code == 403
    assert await _still_works(http, issued)


async def test_consent_form_token_does_not_revoke(http: httpx.AsyncClient) -> None:
    """The tags are kept apart: a consent page's token (HMAC of a request id) is no
    connected-apps token, whatever the request id."""
    grant_id, issued = await _alice_app(http)
    client = await register(http)
    consent = await http.get("/authorize", params={
        "response_type": "code", "client_id": client.client_id, "redirect_uri": "http://127.0.0.1:33418/callback",
        "code_challenge": "a" * 43, "code_challenge_method": "S256"})
    fields = form_fields((await http.get(consent.headers["location"])).text)
    response = await http.post(PAGE, data={"grant_id": grant_id, "csrf_token": fields["csrf_token"]})
    assert response.status_code == 403
    assert await _still_works(http, issued)


async def test_get_cannot_revoke(http: httpx.AsyncClient) -> None:
    """RFC 9110 §9.2.1: GET is safe; a link or an image cannot end a grant."""
    grant_id, issued = await _alice_app(http)
    token = form_fields((await http.get(PAGE)).text)["csrf_token"]
    response = await http.get(PAGE, params={"grant_id": grant_id, "csrf_token": token})
    assert response.status_code == 200
    assert await _still_works(http, issued)
    assert grant_ids(response.text) == [grant_id]


async def test_revoke_without_a_signed_in_user_is_refused(http: httpx.AsyncClient) -> None:
    grant_id, issued = await _alice_app(http)
    token = form_fields((await http.get(PAGE)).text)["csrf_token"]
    del http.headers["x-test-user"]
    response = await http.post(PAGE, data={"grant_id": grant_id, "csrf_token": token})
    assert response.status_code == 401
    assert await _still_works(http, issued)


async def test_bad_form_input_is_a_400_page_never_a_500(http: httpx.AsyncClient) -> None:
    grant_id, issued = await _alice_app(http)
    token = form_fields((await http.get(PAGE)).text)["csrf_token"]
    repeated = await http.post(PAGE, content=f"csrf_token={token}&grant_id={grant_id}&grant_id=x",
                               headers={"content-type": "application/x-www-form-urlencoded"})
    assert repeated.status_code == 400
    as_json = await http.post(PAGE, json={"csrf_token": token, "grant_id": grant_id})
    assert as_json.status_code == 400
    nul = await http.post(PAGE, data={"csrf_token": token, "grant_id": grant_id + "\x00"})
    assert nul.status_code == 400
    huge = await http.post(PAGE, data={"csrf_token": token, "grant_id": "g" * 10_000})
    assert huge.status_code == 404
    assert await _still_works(http, issued)


async def test_revocations_are_rate_limited(http: httpx.AsyncClient) -> None:
    """Guessing grant ids (or passwords, through an app's sign-in form) is slowed per IP."""
    statuses = []
    for number in range(31):
        response = await http.post(PAGE, data={"csrf_token": "x", "grant_id": f"guess-{number}"})
        statuses.append(response.status_code)
    assert statuses[:30] == [403] * 30 and statuses[30] == 429
