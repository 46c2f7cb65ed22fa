"""Helpers for the split deployment proofs: the example as real processes, tokens from its sign-in
form, and a browser stand-in that signs in on the example's consent page for the MCP SDK client."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import jwt
from mcp.shared.auth import AuthorizationCodeResult

from tests.flows.live import ConsentBrowser
from tests.helpers import exchange, form_fields, open_consent, query, register

ROOT = Path(__file__).resolve().parents[2]
#: A KEY_ENCRYPTION_SECRET for tests only (≥ 32 bytes).
SECRET = "test-only key encryption secret, 32+ bytes long"
INITIALIZE = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
    "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "test", "version": "0"}}}
MCP_HEADERS = {"accept": "application/json, text/event-stream"}


@dataclass(frozen=True)
class RunningExample:
    base: str
    log: Path


@contextlib.contextmanager
def example_processes(logs: Path, *envs: Mapping[str, str],
                      start_timeout: float = 10.0) -> Iterator[list[RunningExample]]:
    """``python -m example.server`` once per ``envs`` (each with its ``PORT``), all started before
    any is waited for; yields where each listens and logs once every one answers /health.

    Output goes to a file per process (a pipe nobody reads would stall a chatty server), and a
    process that dies at start fails the test with what it printed.
    """
    started: list[tuple[subprocess.Popen[bytes], Path, str]] = []
    try:
        for index, extra in enumerate(envs):
            port = extra["PORT"]
            env = {**os.environ, "PUBLIC_URL": f"http://127.0.0.1:{port}", "LOG_LEVEL": "WARNING", **extra}
            log = logs / f"example-{index}-{port}.log"
            with log.open("wb") as output:
                process = subprocess.Popen([sys.executable, "-m", "example.server"], cwd=ROOT, env=env,
                                           stdout=output, stderr=subprocess.STDOUT)
            started.append((process, log, f"http://127.0.0.1:{port}"))
        for process, log, base in started:
            for _ in range(int(start_timeout / 0.05)):
                with contextlib.suppress(httpx.TransportError):
                    if httpx.get(f"{base}/health").status_code == 200:
                        break
                assert process.poll() is None, log.read_text()
                time.sleep(0.05)
            else:
                raise AssertionError(f"{base} did not start:\n{log.read_text()}")
        yield [RunningExample(base, log) for _, log, base in started]
    finally:
        for process, _, _ in started:
            process.terminate()
        for process, _, _ in started:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


async def example_tokens(http: httpx.AsyncClient, resource: str, username: str = "demo",
                         password: str = "demo") -> dict[str, Any]:
    """Register, sign in and approve on the example's consent page, redeem the code for
    ``resource``: the token response, plus the ``client_id`` that got it."""
    client = await register(http)
    _, fields = await open_consent(http, client.client_id, resource=resource)
    answer = await http.post("/consent", data={**fields, "username": username, "password": password,
                                               "decision": "approve"})
    assert answer.status_code == 303, answer.text
    response = await exchange(http, client.client_id, query(answer.headers["location"])["code"], resource=resource)
    assert response.status_code == 200, response.text
    return {**response.json(), "client_id": client.client_id}


async def refresh(http: httpx.AsyncClient, tokens: Mapping[str, Any]) -> dict[str, Any]:
    """A refresh token grant (the refresh token rotates); the new response with the same client id."""
    response = await http.post("/token", data={"grant_type": "refresh_token", "client_id": tokens["client_id"],
                                               "refresh_token": tokens["refresh_token"]})
    assert response.status_code == 200, response.text
    return {**response.json(), "client_id": tokens["client_id"]}


def kid(token: str) -> str:
    return str(jwt.get_unverified_header(token)["kid"])


def claims(token: str) -> dict[str, Any]:
    """The payload, unverified: to read what the issuer put in, not to trust it."""
    return dict(jwt.decode(token, options={"verify_signature": False}))


async def mcp_status(http: httpx.AsyncClient, mcp_url: str, token: str) -> httpx.Response:
    """An MCP initialize with ``token``: 200 when the bearer check let it through."""
    return await http.post(mcp_url, json=INITIALIZE, headers={**MCP_HEADERS, "authorization": f"Bearer {token}"})


class SignInBrowser(ConsentBrowser):
    """``ConsentBrowser`` for the example's page, where signing in and consenting are one form:
    it posts the username and password with the decision. It records the URLs it was sent to."""

    def __init__(self, username: str, password: str) -> None:
        super().__init__()
        self.credentials = {"username": username, "password": password}
        self.authorization_urls: list[str] = []

    async def redirect_handler(self, authorization_url: str) -> None:
        self.visits += 1
        self.authorization_urls.append(authorization_url)
        async with httpx.AsyncClient(timeout=10) as browser:
            response = await browser.get(authorization_url)
            while response.status_code in (302, 303) and "request_id" in response.headers["location"]:
                response = await browser.get(response.headers["location"])
            assert response.status_code == 200, response.text
            action = str(response.url.copy_with(query=None))
            answer = await browser.post(action, data={**form_fields(response.text), **self.credentials,
                                                      "decision": self.decision})
            assert answer.status_code == 303, answer.text
        params = query(answer.headers["location"])
        self.result = asyncio.get_running_loop().create_future()
        self.result.set_result(AuthorizationCodeResult(
            code=params.get("code", ""), state=params.get("state"), iss=params.get("iss")))
