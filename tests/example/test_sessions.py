"""The example's sign-in that lasts: the signed session cookie, logout, and the sign-in rate limits.

The cookie rules are checked on ``SessionCookies`` itself (tampering, expiry, attributes) and then
over real HTTP against the example under uvicorn: a sign-in on the consent page sets the cookie,
the next consent asks only for the decision, a forged or expired cookie signs nobody in, logout
needs its anti-forgery token, and failed sign-ins are limited per username and per IP
(RFC 6265bis §4.1.2, §4.1.3.2, §5.4.7; RFC 9700 §4.4 for the anti-forgery rules).
"""

from __future__ import annotations

import re
from http.cookies import SimpleCookie

import httpx
import pytest

from example.sessions import SessionCookies
from example.settings import ExampleSettings, SettingsError
from tests.example.conftest import StartExample
from tests.helpers import FrozenClock, authorize_params, form_fields, query, register

SECRET = "s" * 40


def cookies(secret: str = SECRET, clock: FrozenClock | None = None, **changes: object) -> SessionCookies:
    return SessionCookies(secret, clock=clock or FrozenClock(), **changes)  # type: ignore[arg-type]


# -- the cookie value ------------------------------------------------------------------------------
def test_session_cookie_round_trips_the_username() -> None:
    sessions = cookies()
    for name in ("demo", "Ada Lovelace", "ünïcödé.user", "a.b.c"):
        assert sessions.read(sessions.issue(name)) == name


def test_session_cookie_tampering_is_refused() -> None:
    """Changing any part (user, expiry, tag), or a key other than ours, signs nobody in."""
    clock = FrozenClock()
    sessions = cookies(clock=clock)
    value = sessions.issue("guest")
    name, expires, tag = value.split(".")
    admin = sessions.issue("demo").split(".")[0]
    forged = [
        f"{admin}.{expires}.{tag}",                        # another user under this tag
        f"{name}.{int(expires) + 10**6}.{tag}",            # a later expiry
        f"{name}.{expires}.{tag[:-1]}{'A' if tag[-1] != 'A' else 'B'}",
        f"{name}.{expires}.",
        f"{name}.{expires}",
        f"{name}.{expires}.{tag}.extra",
        cookies("t" * 40, clock=clock).issue("guest"),    # signed with another secret
        "", ".", "..", "x" * 5000, f"{value}\x00",
    ]
    for value_ in forged:
        assert sessions.read(value_) is None, value_
    assert sessions.read(value) == "guest"


def test_session_cookie_expiry_is_inside_the_signed_value() -> None:
    clock = FrozenClock()
    sessions = cookies(clock=clock, lifetime=600)
    value = sessions.issue("demo")
    clock.advance(599)
    assert sessions.read(value) == "demo"
    clock.advance(1)
    assert sessions.read(value) is None


def test_a_generated_secret_is_private_to_the_process() -> None:
    """Without SESSION_SECRET each start (or worker) has its own key: its cookies are not accepted."""
    first, second = SessionCookies(None), SessionCookies(None)
    assert second.read(first.issue("demo")) is None
    assert first.read(first.issue("demo")) == "demo"


def test_cookie_attributes_on_http_loopback() -> None:
    """HttpOnly and SameSite=Lax always; on http no ``__Host-`` prefix (the browser would drop it)."""
    header = cookies(lifetime=900).set_cookie_header("demo")
    assert header.startswith("example_session=")
    assert "; HttpOnly" in header and "; SameSite=Lax" in header and "; Path=/" in header
    assert "; Max-Age=900" in header and "Secure" not in header and "Domain" not in header


def test_cookie_attributes_over_https() -> None:
    """RFC 6265bis §4.1.3.2: ``__Host-`` needs Secure, Path=/ and no Domain."""
    header = cookies(secure=True).set_cookie_header("demo")
    assert header.startswith("__Host-example_session=")
    assert "; Secure" in header and "; Path=/" in header and "Domain" not in header
    assert cookies(secure=True).clear_cookie_header().startswith("__Host-example_session=; Max-Age=0")


def test_logout_token_is_bound_to_the_session() -> None:
    sessions = cookies()
    mine, other = sessions.issue("demo"), sessions.issue("guest")
    assert sessions.logout_token_matches(mine, sessions.logout_token(mine))
    assert not sessions.logout_token_matches(mine, sessions.logout_token(other))
    assert not sessions.logout_token_matches(mine, "")
    assert not sessions.logout_token_matches(None, sessions.logout_token(mine))


def test_session_settings_are_validated() -> None:
    assert ExampleSettings.from_env({"SESSION_LIFETIME": "3600"}).session_lifetime == 3600
    assert ExampleSettings.from_env({"SESSION_SECRET": SECRET}).session_secret == SECRET
    assert SECRET not in repr(ExampleSettings.from_env({"SESSION_SECRET": SECRET}))
    for env in ({"SESSION_LIFETIME": "10"}, {"SESSION_LIFETIME": "soon"}, {"SESSION_LIFETIME": str(31 * 86400)},
                {"SESSION_SECRET": "short"}):
        with pytest.raises(SettingsError, match="SESSION_"):
            ExampleSettings.from_env(env)


# -- over HTTP -------------------------------------------------------------------------------------
async def _consent_page(browser: httpx.AsyncClient) -> httpx.Response:
    client = await register(browser)
    started = await browser.get("/authorize", params=authorize_params(client.client_id))
    assert started.status_code == 303
    return await browser.get(started.headers["location"])


async def _sign_in_by_consent(browser: httpx.AsyncClient, password: str = "demo",
                              username: str = "demo") -> httpx.Response:
    page = await _consent_page(browser)
    return await browser.post("/consent", data={**form_fields(page.text), "username": username,
                                                "password": password, "decision": "approve"})


def _set_cookie(response: httpx.Response, name: str = "example_session") -> str | None:
    for header in response.headers.get_list("set-cookie"):
        if header.startswith(f"{name}="):
            return header
    return None


async def test_sign_in_sets_the_session_cookie_and_consent_then_asks_only_for_the_decision(
        start_example: StartExample) -> None:
    async with start_example(session_lifetime=1200) as base, httpx.AsyncClient(base_url=base) as browser:
        approved = await _sign_in_by_consent(browser)
        assert approved.status_code == 303 and query(approved.headers["location"])["code"]
        header = _set_cookie(approved)
        assert header is not None
        assert "HttpOnly" in header and "SameSite=Lax" in header and "Max-Age=1200" in header
        assert "Path=/" in header and "Secure" not in header  # http loopback: no __Host-, no Secure

        page = await _consent_page(browser)
        assert 'name="password"' not in page.text
        assert "as <strong>demo</strong>" in page.text and ">Approve</button>" in page.text
        again = await browser.post("/consent", data={**form_fields(page.text), "decision": "approve"})
        assert again.status_code == 303 and query(again.headers["location"])["code"]
        assert _set_cookie(again) is None  # no new session: none was started


async def test_a_failed_sign_in_sets_no_cookie(start_example: StartExample) -> None:
    async with start_example() as base, httpx.AsyncClient(base_url=base) as browser:
        refused = await _sign_in_by_consent(browser, password="wrong")
        assert refused.status_code == 401 and _set_cookie(refused) is None
        assert "example_session" not in browser.cookies


async def test_a_forged_or_expired_session_cookie_signs_nobody_in(start_example: StartExample) -> None:
    """With the server's SESSION_SECRET known to the test: a cookie that expired, one whose
    expiry was moved, and one signed with another secret are all ignored."""
    async with start_example(session_secret=SECRET) as base, httpx.AsyncClient(base_url=base) as browser:
        expired = cookies(clock=FrozenClock(1_000_000_000)).issue("demo")
        name, expires, tag = cookies(clock=FrozenClock(1_000_000_000)).issue("demo").split(".")
        for value in (expired, f"{name}.{int(expires) + 10**10}.{tag}", cookies("x" * 40).issue("demo")):
            browser.cookies.set("example_session", value)
            page = await _consent_page(browser)
            assert 'name="password"' in page.text, value
            account = await browser.get("/account")
            assert "You are not signed in." in account.text
        browser.cookies.set("example_session", SessionCookies(SECRET).issue("demo"))
        assert "Signed in as <strong>demo</strong>" in (await browser.get("/account")).text


async def test_logout_needs_its_anti_forgery_token_and_removes_the_cookie(start_example: StartExample) -> None:
    async with start_example() as base, httpx.AsyncClient(base_url=base) as browser:
        await _sign_in_by_consent(browser)
        account = await browser.get("/account")
        assert "Signed in as <strong>demo</strong>" in account.text
        assert 'href="/connected-apps"' in account.text
        assert account.headers["x-frame-options"] == "DENY" and account.headers["cache-control"] == "no-store"
        token = form_fields(account.text)["csrf_token"]

        for forged in ({}, {"csrf_token": "0" * 43}, {"csrf_token": token + "x"}):
            refused = await browser.post("/logout", data=forged)
            assert refused.status_code == 403
        assert (await browser.get("/logout")).status_code == 405
        assert "Signed in as" in (await browser.get("/account")).text

        out = await browser.post("/logout", data={"csrf_token": token})
        assert out.status_code == 303 and out.headers["location"] == "/account"
        cleared = SimpleCookie(_set_cookie(out) or "")["example_session"]
        assert cleared.value == "" and cleared["max-age"] == "0"
        assert "You are not signed in." in (await browser.get("/account")).text
        assert 'name="password"' in (await _consent_page(browser)).text


async def test_failed_sign_ins_are_limited_per_username(start_example: StartExample) -> None:
    """Five failures for one name within a minute: the next attempt is 429 before the password is
    checked (even the right one), whatever the name's case; other names are unaffected."""
    async with start_example() as base, httpx.AsyncClient(base_url=base) as browser:
        for number in range(5):
            username = "demo" if number % 2 else "DEMO"
            assert (await _sign_in_by_consent(browser, "wrong", username)).status_code == 401
        limited = await _sign_in_by_consent(browser, "demo")
        assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1
        assert _set_cookie(limited) is None
        guest = await _sign_in_by_consent(browser, "guest", "guest")
        assert guest.status_code == 303


async def test_failed_sign_ins_are_limited_per_ip(start_example: StartExample) -> None:
    """Twenty failures from one address over many names: the next name is refused too."""
    async with start_example() as base, httpx.AsyncClient(base_url=base) as browser:
        page = await _consent_page(browser)
        fields = form_fields(page.text)
        for number in range(20):
            response = await browser.post("/consent", data={**fields, "username": f"user{number}",
                                                            "password": "wrong", "decision": "approve"})
            assert response.status_code == 401
            fields = form_fields(response.text)
        limited = await browser.post("/consent", data={**fields, "username": "guest", "password": "guest",
                                                       "decision": "approve"})
        assert limited.status_code == 429


async def test_sign_in_on_the_connected_apps_page(start_example: StartExample) -> None:
    """The example's sign-in fields on the library's page: a success starts the session and
    shows the apps; the page links back from the consent page."""
    async with start_example() as base, httpx.AsyncClient(base_url=base) as browser:
        page = await browser.get("/connected-apps")
        assert 'type="password" name="password"' in page.text
        token = form_fields(page.text)["csrf_token"]
        wrong = await browser.post("/connected-apps", data={"csrf_token": token, "username": "demo",
                                                            "password": "nope"})
        assert wrong.status_code == 401 and _set_cookie(wrong) is None
        signed = await browser.post("/connected-apps", data={"csrf_token": token, "username": "demo",
                                                             "password": "demo"})
        assert signed.status_code == 303 and _set_cookie(signed) is not None
        listing = await browser.get("/connected-apps")
        assert "Signed in as <strong>demo</strong>" in listing.text
        assert "No applications are connected to your account." in listing.text
        assert re.search(r'<a href="/connected-apps">connected apps</a>', (await _consent_page(browser)).text)


def test_session_settings_are_named_when_a_resource_server_ignores_them() -> None:
    """With AUTH_ISSUER the process signs nobody in: ``main`` warns that these are ignored."""
    settings = ExampleSettings.from_env({"AUTH_ISSUER": "https://issuer.example", "SESSION_LIFETIME": "600",
                                         "SESSION_SECRET": SECRET})
    assert {"SESSION_LIFETIME", "SESSION_SECRET"} <= set(settings.authorization_server_variables())
