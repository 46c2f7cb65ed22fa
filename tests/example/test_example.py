"""The example server and client, end to end over real HTTP on a temporary SQLite database.

The client signs in by filling the example's sign-in + consent form (``--username``), exactly
as its command line does; a later run proves it reused the token file by being given a wrong
password it would fail with if it had to sign in again.
"""

from __future__ import annotations

import asyncio
import json
import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from mcp.shared.exceptions import MCPError

from example.client import ClientOptions, LoginFailed, connect, find_login_failure, run
from tests.example.conftest import StartExample
from tests.flows.live import free_port
from tests.helpers import authorize_params, form_fields, query, register

ROOT = Path(__file__).resolve().parents[2]
ALL = ["mcp:admin", "mcp:prompts", "mcp:tools"]


def options(base: str, token_file: Path, username: str = "demo", password: str = "demo") -> ClientOptions:
    return ClientOptions(server_url=f"{base}/mcp", token_file=token_file, username=username, password=password)


def stored(token_file: Path) -> dict[str, object]:
    entry = next(iter(json.loads(token_file.read_text()).values()))
    assert isinstance(entry, dict)
    return entry


async def test_health(start_example: StartExample) -> None:
    async with start_example() as base, httpx.AsyncClient(base_url=base) as http:
        response = await http.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_client_signs_in_calls_whoami_and_reuses_the_token_file(
    start_example: StartExample, tmp_path: Path
) -> None:
    token_file = tmp_path / "tokens.json"
    async with start_example() as base:
        first = await run(options(base, token_file))
        assert first.tools == ["whoami", "echo", "get_time", "protected-data"]
        assert first.whoami["user"] == "demo"
        assert first.whoami["scopes"] == ALL
        assert "token" not in json.dumps(first.whoami).replace("client_id", "")
        assert stat.S_IMODE(token_file.stat().st_mode) == 0o600, "the token file holds credentials"
        tokens_before = stored(token_file)["tokens"]

        # A wrong password would fail a new sign-in: success means the stored token was used.
        second = await run(options(base, token_file, password="wrong"))
        assert second.whoami == first.whoami
        assert stored(token_file)["tokens"] == tokens_before


async def test_client_refreshes_an_expired_token_on_the_next_run(start_example: StartExample, tmp_path: Path) -> None:
    token_file = tmp_path / "tokens.json"
    # The server counts whole seconds, so a token lives between LIFETIME - 1 and LIFETIME seconds:
    # 3 leaves the refreshed token at least 2 s for the rest of the run.
    async with start_example(access_token_lifetime=3) as base:
        await run(options(base, token_file))
        before = stored(token_file)["tokens"]
        assert isinstance(before, dict) and before["expires_in"] == 3
        await asyncio.sleep(3.2)

        result = await run(options(base, token_file, password="wrong"))
        assert result.whoami["user"] == "demo"
        after = stored(token_file)["tokens"]
        assert isinstance(after, dict)
        assert after["access_token"] != before["access_token"]
        assert after["refresh_token"] != before["refresh_token"], "refresh tokens rotate"


async def test_guest_cannot_get_the_admin_scope(start_example: StartExample, tmp_path: Path) -> None:
    async with start_example() as base:
        async with connect(options(base, tmp_path / "guest.json", "guest", "guest")) as session:
            whoami = await session.call_tool("whoami", {})
            assert whoami.structured_content is not None
            assert whoami.structured_content["scopes"] == ["mcp:tools"], "the guest role grants mcp:tools only"
            assert (await session.call_tool("echo", {"text": "hi"})).content[0].text == "hi"  # type: ignore[union-attr]

            denied = await session.call_tool("protected-data", {})
            assert denied.is_error
            assert "needs the mcp:admin scope" in denied.content[0].text  # type: ignore[union-attr]
            with pytest.raises(MCPError, match="mcp:prompts"):
                await session.get_prompt("greeting", {"name": "Ada"})

        async with connect(options(base, tmp_path / "demo.json")) as session:
            allowed = await session.call_tool("protected-data", {})
            assert not allowed.is_error and allowed.structured_content is not None
            assert allowed.structured_content["read_by"] == "demo"
            prompt = await session.get_prompt("greeting", {"name": "Ada"})
            assert "Ada" in prompt.messages[0].content.text  # type: ignore[union-attr]


async def test_wrong_password_shows_the_page_again_and_issues_no_code(
    start_example: StartExample, tmp_path: Path
) -> None:
    async with start_example() as base, httpx.AsyncClient(base_url=base) as browser:
        client = await register(browser)
        response = await browser.get("/authorize", params=authorize_params(client.client_id))
        assert response.status_code == 303
        page = await browser.get(response.headers["location"])
        assert page.status_code == 200
        assert 'name="username"' in page.text and 'type="password" name="password"' in page.text
        fields = form_fields(page.text)

        wrong = await browser.post("/consent", data={**fields, "username": "demo", "password": "nope",
                                                     "decision": "approve"})
        assert wrong.status_code == 401
        assert "location" not in wrong.headers
        assert 'role="alert"' in wrong.text and 'name="password"' in wrong.text
        assert "code=" not in wrong.text

        # The request is still pending: the user can correct the password.
        right = await browser.post("/consent", data={**form_fields(wrong.text), "username": "demo",
                                                     "password": "demo", "decision": "approve"})
        assert right.status_code == 303
        assert query(right.headers["location"])["code"]


async def test_client_reports_a_wrong_password(start_example: StartExample, tmp_path: Path) -> None:
    async with start_example() as base:
        with pytest.raises(Exception) as failure:
            await run(options(base, tmp_path / "tokens.json", password="nope"))
    found = find_login_failure(failure.value)
    assert isinstance(found, LoginFailed) and str(found) == "wrong username or password"


def test_server_and_client_as_commands(tmp_path: Path) -> None:
    """``python -m example.server`` with env settings, then ``python -m example.client`` twice."""
    port = free_port()
    env = {**os.environ, "PORT": str(port), "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'example.db'}",
           "DEMO_PASSWORD": "s3cret", "LOG_LEVEL": "WARNING"}
    server = subprocess.Popen([sys.executable, "-m", "example.server"], cwd=ROOT, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        for _ in range(100):
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert server.poll() is None, server.stdout.read() if server.stdout else ""
            time.sleep(0.1)
        client = [sys.executable, "-m", "example.client", "--server", f"http://localhost:{port}/mcp",
                  "--token-file", str(tmp_path / "tokens.json")]
        first = subprocess.run([*client, "--username", "demo", "--password", "s3cret"], cwd=ROOT,
                               capture_output=True, text=True, timeout=60, check=False)
        assert first.returncode == 0, first.stderr
        assert "tools: whoami echo get_time protected-data" in first.stdout
        assert '"user": "demo"' in first.stdout
        again = subprocess.run([*client, "--username", "demo", "--password", "wrong"], cwd=ROOT,
                               capture_output=True, text=True, timeout=60, check=False)
        assert again.returncode == 0, again.stderr
        wrong = subprocess.run([*client[:-1], str(tmp_path / "other.json"), "--username", "demo",
                                "--password", "wrong"], cwd=ROOT, capture_output=True, text=True, timeout=60,
                               check=False)
        assert wrong.returncode == 1
        assert wrong.stderr.strip() == "error: wrong username or password"
    finally:
        server.terminate()
        output, _ = server.communicate(timeout=10)
    assert f"Listening on http://127.0.0.1:{port}" in output
    assert f"Issuer: http://localhost:{port}" in output
    assert "s3cret" not in output, "a password chosen with DEMO_PASSWORD is never printed"
    assert "Demo users: demo (password from DEMO_PASSWORD) (admin)" in output


def test_example_settings_read_every_variable_from_the_environment() -> None:
    from example.settings import ExampleSettings

    settings = ExampleSettings.from_env({"PORT": "9001", "RATE_LIMIT": "off", "ACCESS_TOKEN_LIFETIME": "60",
                                         "PURGE_INTERVAL": "30", "LOG_LEVEL": "debug"})
    assert (settings.port, settings.rate_limit, settings.access_token_lifetime, settings.purge_interval,
            settings.log_level, settings.public_url) == (9001, False, 60, 30.0, "DEBUG", "http://localhost:9001")
    assert ExampleSettings.from_env({}).purge_interval == 300.0
