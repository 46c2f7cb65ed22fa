"""A real browser (Debian's chromium, driven by Playwright) through the example's sign-in + consent page.

No JavaScript is needed by the page; this proves the form works in a browser as users see it:
the cookie that binds the form to the browser, the 401 page after a wrong password, the 303 to
the client's loopback redirect with a code. Screenshots go to ``tests/artifacts/`` (gitignored).
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from urllib.parse import urlencode

import httpx

from example.client import LoopbackCallback
from tests.example.running import running_example
from tests.helpers import CHALLENGE, VERIFIER
from tests.interop.support import ARTIFACTS, HERE, unavailable

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def ensure_chromium() -> None:
    result = subprocess.run(["sh", str(HERE / "ensure_chromium.sh")], capture_output=True, text=True, timeout=900,
                            check=False)
    if result.returncode != 0 or not Path(CHROMIUM).exists():
        unavailable(f"chromium could not be installed: {result.stderr[-1000:]}")


async def test_real_browser_signs_in_and_approves(tmp_path: Path) -> None:
    try:
        from playwright.async_api import async_playwright
    except ImportError:
        unavailable("the Python package playwright is not installed (pip install playwright)")
    ensure_chromium()
    ARTIFACTS.mkdir(exist_ok=True)

    async with running_example(tmp_path) as base, LoopbackCallback() as callback, httpx.AsyncClient(
        base_url=base
    ) as http:
        registered = await http.post("/register", json={
            "client_name": "Browser test client", "redirect_uris": [callback.redirect_uri],
            "token_endpoint_auth_method": "none"})
        assert registered.status_code == 201, registered.text
        client_id = registered.json()["client_id"]
        authorization_url = f"{base}/authorize?" + urlencode({
            "response_type": "code", "client_id": client_id, "redirect_uri": callback.redirect_uri,
            "code_challenge": CHALLENGE, "code_challenge_method": "S256", "state": "browser-state",
            "scope": "mcp:tools mcp:admin", "resource": f"{base}/mcp"})

        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
            try:
                page = await browser.new_page()
                await page.goto(authorization_url)
                assert "/consent?request_id=" in page.url
                assert await page.locator("h1").inner_text() == "Authorize Browser test client"
                await page.screenshot(path=str(ARTIFACTS / "consent.png"), full_page=True)

                await page.fill("input[name=username]", "demo")
                await page.fill("input[name=password]", "not the password")
                async with page.expect_navigation() as refused:
                    await page.click("button[name=decision][value=approve]")
                response = await refused.value
                assert response is not None and response.status == 401
                assert "Sign in to approve" in await page.locator("[role=alert]").inner_text()
                await page.screenshot(path=str(ARTIFACTS / "consent-wrong-password.png"), full_page=True)

                await page.fill("input[name=username]", "demo")
                await page.fill("input[name=password]", "demo")
                await page.click("button[name=decision][value=approve]")
                result = await callback.wait(timeout=30)
                await page.wait_for_url(f"{callback.redirect_uri}?*")
                assert "Signed in." in await page.content()
            finally:
                await browser.close()

        assert result.state == "browser-state" and result.iss == base
        token = await http.post("/token", data={
            "grant_type": "authorization_code", "code": result.code, "redirect_uri": callback.redirect_uri,
            "code_verifier": VERIFIER, "client_id": client_id, "resource": f"{base}/mcp"})
        assert token.status_code == 200, token.text
        assert token.json()["scope"] == "mcp:tools mcp:admin"
