"""A real browser (Debian's chromium, driven by Playwright) through the connected-apps page.

The user signs in and approves a client on the example's consent page (a real authorization
code flow: the browser follows the redirects, the client redeems the code), finds the client on
``/connected-apps`` (the session cookie from the consent keeps them signed in), revokes it with
the page's button, and the client's access token is then refused at ``/mcp`` with 401. The
page is saved as ``connected-apps.png`` (and ``connected-apps-revoked.png``) under the test
artifacts (``TEST_ARTIFACTS``, else ``tests/artifacts/``).
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlencode

import httpx

from example.client import LoopbackCallback
from tests.example.running import running_example
from tests.example.split import mcp_status
from tests.helpers import CHALLENGE, VERIFIER
from tests.interop.support import ARTIFACTS, unavailable
from tests.interop.test_real_browser import CHROMIUM, CHROMIUM_ARGS, ensure_chromium


async def test_real_browser_lists_and_revokes_a_connected_app(tmp_path: Path) -> None:
    try:
        from playwright.async_api import async_playwright
    except ImportError:
        unavailable("the Python package playwright is not installed (pip install playwright)")
    ensure_chromium()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)

    async with running_example(tmp_path) as base, LoopbackCallback() as callback, httpx.AsyncClient(
        base_url=base
    ) as http:
        registered = await http.post("/register", json={
            "client_name": "Browser connected app", "redirect_uris": [callback.redirect_uri],
            "token_endpoint_auth_method": "none"})
        assert registered.status_code == 201, registered.text
        client_id = registered.json()["client_id"]
        authorization_url = f"{base}/authorize?" + urlencode({
            "response_type": "code", "client_id": client_id, "redirect_uri": callback.redirect_uri,
            "code_challenge": CHALLENGE, "code_challenge_method": "S256", "state": "apps-state",
            "scope": "mcp:tools mcp:prompts", "resource": f"{base}/mcp"})

        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
            try:
                page = await browser.new_page()
                await page.goto(authorization_url)
                await page.fill("input[name=username]", "demo")
                await page.fill("input[name=password]", "demo")
                await page.click("button[name=decision][value=approve]")
                result = await callback.wait(timeout=30)
                await page.wait_for_url(f"{callback.redirect_uri}?*")
                assert result.state == "apps-state"
                token = await http.post("/token", data={
                    "grant_type": "authorization_code", "code": result.code, "redirect_uri": callback.redirect_uri,
                    "code_verifier": VERIFIER, "client_id": client_id, "resource": f"{base}/mcp"})
                assert token.status_code == 200, token.text
                access_token = token.json()["access_token"]
                assert (await mcp_status(http, f"{base}/mcp", access_token)).status_code == 200

                await page.goto(f"{base}/connected-apps")  # still signed in: the session cookie
                app = page.locator("li.app")
                assert await app.count() == 1
                text = await app.inner_text()
                assert "Browser connected app" in text and client_id in text
                assert "mcp:tools" in text and "mcp:prompts" in text and f"{base}/mcp" in text
                assert "Granted " in text and "Last used " in text and "not recorded" not in text
                await page.screenshot(path=str(ARTIFACTS / "connected-apps.png"), full_page=True)

                async with page.expect_navigation():
                    await app.locator("button", has_text="Revoke access").click()
                assert page.url == f"{base}/connected-apps"
                assert await page.locator("li.app").count() == 0
                assert "No applications are connected" in await page.locator(".no-apps").inner_text()
                await page.screenshot(path=str(ARTIFACTS / "connected-apps-revoked.png"), full_page=True)
            finally:
                await browser.close()

        refused = await mcp_status(http, f"{base}/mcp", access_token)
        assert refused.status_code == 401
        assert 'error="invalid_token"' in refused.headers["www-authenticate"]
