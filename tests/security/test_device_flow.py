"""The device authorization grant's rules (RFC 8628), one test each, and the attacks on them.

§3.5 slow_down per device code, §5.1 user-code brute force (entropy, rate limits, expiry, no
oracle), §5.2 remote phishing (the page shows who asks, and decisions need the anti-forgery token
and the signed-in user), §5.4 non-confidential clients, §6.1 the user-code character set; plus
replay, another client's device code, approval by GET or without the token, expiry and denial.
"""

from __future__ import annotations

import collections
import hashlib
import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from oauth_server import MemoryOAuthServerModel, OAuthServer, OAuthServerSettings, mcp_auth_router, user_codes
from oauth_server.records import DEVICE_PENDING
from tests.conftest import ISSUER, RESOURCE, SCOPES, build_app, signed_in_user
from tests.device_helpers import (
    DEVICE_GRANT,
    decide,
    decision_form,
    enter_code,
    entry_form,
    error_of,
    poll,
    register_device_client,
    start,
    started,
)
from tests.helpers import FrozenClock, register

LIFETIME = 600


def device_settings(**changes: object) -> OAuthServerSettings:
    options: dict[str, object] = {
        "issuer_url": ISSUER, "resource_server_url": RESOURCE, "authorization_url": f"{ISSUER}/consent",
        "scopes_supported": SCOPES, "default_scopes": ("mcp:tools",), "device_authorization_grant": True,
        "device_code_lifetime": LIFETIME, "device_poll_interval": 5,
    }
    options.update(changes)
    return OAuthServerSettings(**options)  # type: ignore[arg-type]


@pytest.fixture
def server(model: MemoryOAuthServerModel, clock: FrozenClock) -> OAuthServer:
    return OAuthServer(model, device_settings(), clock=clock)


@pytest.fixture
async def http(server: OAuthServer) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=build_app(server))
    async with httpx.AsyncClient(transport=transport, base_url=ISSUER, headers={"x-test-user": "alice"}) as client:
        yield client


async def approved_tokens(http: httpx.AsyncClient, client_id: str) -> tuple[dict[str, Any], dict[str, Any]]:
    started_ = await started(http, client_id)
    assert (await decide(http, started_["user_code"], "approve")).status_code == 200
    response = await poll(http, client_id, started_["device_code"])
    assert response.status_code == 200, response.text
    return started_, response.json()


# -- §6.1 user codes ----------------------------------------------------------------------------
def test_user_codes_use_the_rfc8628_base20_charset() -> None:
    """RFC 8628 §6.1: base-20 consonants, no vowels or look-alike digits, shown as XXXX-XXXX."""
    codes = [user_codes.new_user_code() for _ in range(2000)]
    assert all(re.fullmatch(r"[BCDFGHJKLMNPQRSTVWXZ]{4}-[BCDFGHJKLMNPQRSTVWXZ]{4}", code) for code in codes)
    assert set("".join(codes).replace("-", "")) == set(user_codes.ALPHABET) == set("BCDFGHJKLMNPQRSTVWXZ")


def test_user_code_generation_has_no_modulo_bias() -> None:
    """RFC 8628 §5.1/§6.1: every character equally likely. A ``byte % 20`` draw would make the
    first 16 characters 13/12 as likely as the last 4: a chi-square of about 156 over 160,000
    characters, against a limit of 60 (p < 1e-5 for 19 degrees of freedom when unbiased)."""
    counts = collections.Counter("".join(user_codes.new_user_code().replace("-", "") for _ in range(20_000)))
    expected = 160_000 / 20
    chi_square = sum((counts[char] - expected) ** 2 / expected for char in user_codes.ALPHABET)
    assert chi_square < 60, counts


def test_user_code_comparison_ignores_case_dashes_and_spaces() -> None:
    """RFC 8628 §6.1: case-insensitive, punctuation outside the character set ignored."""
    assert user_codes.normalize("wdjb-mjht") == user_codes.normalize(" WDJB MJHT ") == "WDJBMJHT"
    for not_a_code in ("WDJB-MJH", "WDJB-MJHTX", "WDJA-MJHT", "WDJB-MJH0", "WDJB-MJHß", "x" * 100):
        assert user_codes.normalize(not_a_code) is None


async def test_user_code_accepted_in_any_spelling(http: httpx.AsyncClient) -> None:
    """RFC 8628 §6.1: the code as the person types it: lower case, spaces instead of the dash."""
    client_id, _ = await register_device_client(http)
    code = (await started(http, client_id))["user_code"]
    page = await enter_code(http, code.lower().replace("-", " "))
    assert page.status_code == 200 and code in page.text


async def test_codes_are_stored_as_digests(http: httpx.AsyncClient, model: MemoryOAuthServerModel) -> None:
    """RFC 8628 §5.1 / RFC 6749 §10.3: neither the device code nor the user code is stored."""
    client_id, _ = await register_device_client(http)
    body = await started(http, client_id)
    (record,) = model.devices.values()
    normalized = body["user_code"].replace("-", "")
    assert record.device_code_digest == hashlib.sha256(body["device_code"].encode()).hexdigest()
    assert record.user_code_digest == hashlib.sha256(normalized.encode()).hexdigest()
    assert body["device_code"] not in repr(record) and normalized not in repr(record)
    assert len(body["device_code"]) >= 43  # 256 bits: the device code is a bearer credential


# -- §3.2 / §3.5 polling -------------------------------------------------------------------------
async def test_device_authorization_response_per_rfc8628(http: httpx.AsyncClient) -> None:
    """RFC 8628 §3.2: device_code, user_code, verification_uri(_complete), expires_in, interval."""
    client_id, _ = await register_device_client(http)
    response = await start(http, client_id)
    body = response.json()
    assert response.headers["cache-control"] == "no-store"
    assert body["verification_uri"] == f"{ISSUER}/device"
    assert body["verification_uri_complete"] == f"{ISSUER}/device?user_code={body['user_code']}"
    assert (body["expires_in"], body["interval"]) == (LIFETIME, 5)


async def test_slow_down_adds_five_seconds_per_device_code(http: httpx.AsyncClient, clock: FrozenClock) -> None:
    """RFC 8628 §3.5: a poll before the interval is ``slow_down`` and the interval grows by 5 s
    for all later polls, per device code (another code of the same client is unaffected)."""
    client_id, _ = await register_device_client(http)
    first, second = await started(http, client_id), await started(http, client_id)
    assert error_of(await poll(http, client_id, first["device_code"])) == "authorization_pending"
    clock.advance(1)
    assert error_of(await poll(http, client_id, first["device_code"])) == "slow_down"  # interval now 10
    assert error_of(await poll(http, client_id, second["device_code"])) == "authorization_pending"
    clock.advance(9)
    assert error_of(await poll(http, client_id, first["device_code"])) == "slow_down"  # 9 < 10: now 15
    clock.advance(14)
    assert error_of(await poll(http, client_id, first["device_code"])) == "slow_down"  # 14 < 15: now 20
    clock.advance(20)
    assert error_of(await poll(http, client_id, first["device_code"])) == "authorization_pending"


async def test_approved_device_gets_tokens_and_refresh_per_rule(http: httpx.AsyncClient) -> None:
    """RFC 8628 §3.5 success; the refresh token follows ``refresh_token_allowed`` (registered for it)."""
    with_refresh, _ = await register_device_client(http)
    _, body = await approved_tokens(http, with_refresh)
    assert body["token_type"] == "Bearer" and body["scope"] == "mcp:tools" and "refresh_token" in body
    without, _ = await register_device_client(http, grant_types=[DEVICE_GRANT])
    _, body = await approved_tokens(http, without)
    assert "refresh_token" not in body
    me = await http.post("/mcp", headers={"authorization": f"Bearer {body['access_token']}"})
    assert me.json()["subject"] == "alice"


# -- attacks on the device code -----------------------------------------------------------------
async def test_device_code_replay_revokes_the_grant(http: httpx.AsyncClient) -> None:
    """RFC 8628 §3.4 with RFC 9700 §4.5: a device code is single use; presented again after it
    yielded tokens, it is refused and the tokens issued from it are revoked."""
    client_id, _ = await register_device_client(http)
    body, tokens = await approved_tokens(http, client_id)
    replay = await poll(http, client_id, body["device_code"])
    assert replay.status_code == 400 and error_of(replay) == "invalid_grant"
    me = await http.post("/mcp", headers={"authorization": f"Bearer {tokens['access_token']}"})
    assert me.status_code == 401


async def test_poll_with_another_clients_device_code_refused(http: httpx.AsyncClient, clock: FrozenClock) -> None:
    """RFC 8628 §3.4: the device code is bound to the client that asked for it. (The refused
    poll still counts as a poll of that code: only a holder of the 256-bit code can make one.)"""
    owner, _ = await register_device_client(http)
    thief, _ = await register_device_client(http)
    body = await started(http, owner)
    assert (await decide(http, body["user_code"], "approve")).status_code == 200
    stolen = await poll(http, thief, body["device_code"])
    assert stolen.status_code == 400 and error_of(stolen) == "invalid_grant"
    clock.advance(5)
    assert (await poll(http, owner, body["device_code"])).status_code == 200


async def test_expired_device_code_never_yields_tokens(http: httpx.AsyncClient, clock: FrozenClock) -> None:
    """RFC 8628 §3.5 ``expired_token``: after ``expires_in`` the code can neither be approved
    (a form opened before expiry included) nor redeemed, even if approved just before."""
    client_id, _ = await register_device_client(http)
    late, approved_late = await started(http, client_id), await started(http, client_id)
    fields = await decision_form(http, late["user_code"])
    assert (await decide(http, approved_late["user_code"], "approve")).status_code == 200
    clock.advance(LIFETIME)
    assert error_of(await poll(http, client_id, late["device_code"])) == "expired_token"
    assert error_of(await poll(http, client_id, approved_late["device_code"])) == "expired_token"
    refused = await http.post("/device", data={**fields, "decision": "approve"})
    assert refused.status_code == 400 and "not valid or has expired" in refused.text
    assert (await enter_code(http, late["user_code"])).status_code == 400


async def test_denied_device_code_polls_access_denied_forever(http: httpx.AsyncClient, clock: FrozenClock) -> None:
    """RFC 8628 §3.5 ``access_denied``: a denied request never yields tokens, and cannot be
    approved afterwards."""
    client_id, _ = await register_device_client(http)
    body = await started(http, client_id)
    assert (await decide(http, body["user_code"], "deny")).status_code == 200
    for _ in range(3):
        clock.advance(5)
        response = await poll(http, client_id, body["device_code"])
        assert response.status_code == 400 and error_of(response) == "access_denied"
    assert (await enter_code(http, body["user_code"])).status_code == 400


async def test_resource_mismatch_at_the_token_endpoint_burns_the_device_code(http: httpx.AsyncClient) -> None:
    """RFC 8707 §2.2: the token request's resource must be the one the device asked for."""
    client_id, _ = await register_device_client(http)
    body = await started(http, client_id)
    await decide(http, body["user_code"], "approve")
    wrong = await poll(http, client_id, body["device_code"], resource="https://elsewhere.example/mcp")
    assert error_of(wrong) == "invalid_target"
    assert error_of(await poll(http, client_id, body["device_code"])) == "invalid_grant"


# -- §5.2 remote phishing: who asks, and only a genuine decision counts -----------------------
async def test_verification_page_shows_the_client_scopes_resource_and_warning(http: httpx.AsyncClient) -> None:
    """RFC 8628 §5.2: the user sees who asks, for what, and a warning against codes sent by others;
    the page is never framed or cached (RFC 9700 §4.16)."""
    client_id, _ = await register_device_client(http, client_name="Kitchen TV", scope="mcp:tools mcp:prompts")
    body = await started(http, client_id, scope="mcp:tools mcp:prompts")
    page = await enter_code(http, body["user_code"])
    for shown in ("Kitchen TV", "mcp:tools", "mcp:prompts", RESOURCE, body["user_code"], "If someone sent you"):
        assert shown in page.text
    assert page.headers["x-frame-options"] == "DENY" and page.headers["cache-control"] == "no-store"
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]


async def test_approve_by_get_is_impossible(http: httpx.AsyncClient, model: MemoryOAuthServerModel) -> None:
    """``verification_uri_complete`` only pre-fills the form: no GET looks a code up or decides."""
    client_id, _ = await register_device_client(http)
    body = await started(http, client_id)
    fields = await decision_form(http, body["user_code"])
    page = await http.get("/device", params={**fields, "decision": "approve"})
    assert page.status_code == 200 and "Enter the code" in page.text
    prefilled = await entry_form(http, f"?user_code={body['user_code'].lower()}")
    assert prefilled["user_code"] == body["user_code"]
    assert all(record.status == DEVICE_PENDING for record in model.devices.values())
    assert error_of(await poll(http, client_id, body["device_code"])) == "authorization_pending"


async def test_decision_without_the_anti_forgery_token_refused(http: httpx.AsyncClient,
                                                              model: MemoryOAuthServerModel) -> None:
    """RFC 9700 §4.4: a decision needs this browser's token for this code: none, another code's,
    the entry form's, or a cross-site post without the cookie are refused (403)."""
    client_id, _ = await register_device_client(http)
    mine, other = await started(http, client_id), await started(http, client_id)
    fields = await decision_form(http, mine["user_code"])
    other_fields = await decision_form(http, other["user_code"])
    entry = await entry_form(http)
    for forged in ({"user_code": mine["user_code"], "decision": "approve"},
                   {**fields, "csrf_token": other_fields["csrf_token"], "decision": "approve"},
                   {**fields, "csrf_token": entry["csrf_token"], "decision": "approve"}):
        assert (await http.post("/device", data=forged)).status_code == 403
    http.cookies.clear()
    assert (await http.post("/device", data={**fields, "decision": "approve"})).status_code == 403
    assert (await http.post("/device", data={"user_code": mine["user_code"], **entry})).status_code == 403
    assert all(record.status == DEVICE_PENDING for record in model.devices.values())


async def test_decision_requires_the_signed_in_user(http: httpx.AsyncClient, model: MemoryOAuthServerModel) -> None:
    """RFC 8628 §3.3: the user authenticates before deciding; without a user nothing changes."""
    client_id, _ = await register_device_client(http)
    body = await started(http, client_id)
    for decision in ("approve", "deny"):
        response = await decide(http, body["user_code"], decision, **{"x-test-user": ""})
        assert response.status_code == 401 and "Sign in" in response.text
    assert all(record.status == DEVICE_PENDING for record in model.devices.values())


async def test_a_code_is_decided_once(http: httpx.AsyncClient) -> None:
    """A second decision on a decided code (a replayed form) changes nothing."""
    client_id, _ = await register_device_client(http)
    body = await started(http, client_id)
    fields = await decision_form(http, body["user_code"])
    assert (await http.post("/device", data={**fields, "decision": "deny"})).status_code == 200
    assert (await http.post("/device", data={**fields, "decision": "approve"})).status_code == 400
    assert error_of(await poll(http, client_id, body["device_code"])) == "access_denied"


# -- §5.1 brute force ------------------------------------------------------------------------------
async def test_wrong_codes_all_look_alike(http: httpx.AsyncClient, clock: FrozenClock) -> None:
    """RFC 8628 §5.1: malformed, unknown, expired and decided codes get one answer, no oracle."""
    client_id, _ = await register_device_client(http)
    denied, expired = await started(http, client_id), await started(http, client_id)
    await decide(http, denied["user_code"], "deny")
    clock.advance(LIFETIME - 1)
    late = await started(http, client_id)
    clock.advance(1)
    answers = set()
    for typed in ("nonsense", "BBBB-BBBB", denied["user_code"], expired["user_code"]):
        response = await enter_code(http, typed)
        assert response.status_code == 400
        answers.add(re.sub(r'value="[^"]*"', "", response.text))
    assert len(answers) == 1
    assert (await enter_code(http, late["user_code"])).status_code == 200


async def test_code_entry_rate_limited_per_browser_and_per_ip(server: OAuthServer) -> None:
    """RFC 8628 §5.1: at most 10 codes a minute from one browser session, 20 from one IP
    (``device_verify_session``, ``device_verify``), so guessing is bounded (SECURITY.md)."""
    transport = httpx.ASGITransport(app=build_app(server))
    async with httpx.AsyncClient(transport=transport, base_url=ISSUER) as browser:
        statuses = [(await enter_code(browser, "BBBB-BBBB")).status_code for _ in range(11)]
        assert statuses == [400] * 10 + [429]
        statuses = []
        for _ in range(10):  # fresh sessions, same IP: 9 more then the IP's limit
            browser.cookies.clear()
            statuses.append((await enter_code(browser, "BBBB-BBBB")).status_code)
        assert statuses == [400] * 9 + [429]


async def test_user_codes_never_collide_in_storage(http: httpx.AsyncClient, model: MemoryOAuthServerModel,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """A freshly drawn user code already stored is drawn again, never shared by two devices."""
    client_id, _ = await register_device_client(http)
    draws = iter(["BBBB-BBBB", "BBBB-BBBB", "CCCC-CCCC"])
    monkeypatch.setattr(user_codes, "new_user_code", lambda: next(draws))
    first, second = await started(http, client_id), await started(http, client_id)
    assert (first["user_code"], second["user_code"]) == ("BBBB-BBBB", "CCCC-CCCC")
    assert len(model.devices) == 2


# -- §5.4 non-confidential clients and registration ----------------------------------------------
async def test_device_authorization_needs_a_client_registered_for_the_grant(http: httpx.AsyncClient) -> None:
    """RFC 8628 §5.4 / RFC 6749 §5.2: a public client identifies itself by client_id and must be
    registered for the device grant; a confidential one authenticates as at /token."""
    browser_client = await register(http)
    refused = await start(http, browser_client.client_id)
    assert refused.status_code == 400 and error_of(refused) == "unauthorized_client"
    assert (await start(http, "unknown-client")).status_code == 401
    confidential, secret = await register_device_client(http, token_endpoint_auth_method="client_secret_post")
    assert secret is not None
    wrong = await start(http, confidential, client_secret="wrong")
    assert wrong.status_code == 401 and error_of(wrong) == "invalid_client"
    assert (await start(http, confidential)).status_code == 401  # no secret: not as a public client
    assert (await start(http, confidential, client_secret=secret)).status_code == 200


async def test_device_authorization_validates_scope_and_resource(http: httpx.AsyncClient) -> None:
    """Scope and resource are checked as at /authorize (RFC 6749 §3.3, RFC 8707 §2)."""
    client_id, _ = await register_device_client(http, scope="mcp:tools")
    assert error_of(await start(http, client_id, scope="mcp:admin")) == "invalid_scope"
    assert error_of(await start(http, client_id, resource="https://elsewhere.example/mcp")) == "invalid_target"
    assert (await start(http, client_id, resource=RESOURCE, scope="mcp:tools")).status_code == 200


async def test_token_endpoint_refuses_a_client_not_registered_for_the_grant(http: httpx.AsyncClient) -> None:
    browser_client = await register(http)
    response = await poll(http, browser_client.client_id, "x" * 43)
    assert error_of(response) == "unauthorized_client"


async def test_registration_and_metadata_follow_the_setting(http: httpx.AsyncClient, clock: FrozenClock) -> None:
    """Metadata advertises exactly what is enabled (RFC 8414 §2, RFC 8628 §4); with the grant off,
    DCR refuses the grant type and the endpoints are gone."""
    on = (await http.get("/.well-known/oauth-authorization-server")).json()
    assert on["device_authorization_endpoint"] == f"{ISSUER}/device_authorization"
    assert DEVICE_GRANT in on["grant_types_supported"]
    off = OAuthServer(MemoryOAuthServerModel(), device_settings(device_authorization_grant=False), clock=clock)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=build_app(off)), base_url=ISSUER) as other:
        metadata = (await other.get("/.well-known/oauth-authorization-server")).json()
        assert "device_authorization_endpoint" not in metadata and DEVICE_GRANT not in metadata["grant_types_supported"]
        response = await other.post("/register", json={"redirect_uris": [], "grant_types": [DEVICE_GRANT],
                                                        "token_endpoint_auth_method": "none"})
        assert response.status_code == 400 and response.json()["error"] == "invalid_client_metadata"
        assert (await other.post("/device_authorization", data={"client_id": "x"})).status_code in (404, 405)
        assert (await other.get("/device")).status_code in (404, 405)


async def test_user_scopes_narrow_the_device_grant(model: MemoryOAuthServerModel, clock: FrozenClock) -> None:
    """As for a code: the grant holds only the scopes this user may grant (``user_scopes``); a user
    who may grant none of them is told so and the request stays pending."""
    roles = {"alice": ("mcp:tools",), "nobody": ()}
    app = FastAPI()
    app.include_router(mcp_auth_router(OAuthServer(model, device_settings(), clock=clock), get_user=signed_in_user,
                                       user_scopes=lambda subject: roles[subject]))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=ISSUER) as http:
        client_id, _ = await register_device_client(http)
        body = await started(http, client_id, scope="mcp:tools mcp:admin")
        refused = await decide(http, body["user_code"], "approve", **{"x-test-user": "nobody"})
        assert refused.status_code == 403 and "may not grant" in refused.text
        assert (await decide(http, body["user_code"], "approve", **{"x-test-user": "alice"})).status_code == 200
        tokens = await poll(http, client_id, body["device_code"])
        assert tokens.json()["scope"] == "mcp:tools"
