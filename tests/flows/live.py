"""A real uvicorn server in the test's event loop, and a browser stand-in that fills the consent form."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator

import httpx
import uvicorn
from mcp.shared.auth import AuthorizationCodeResult, OAuthClientInformationFull, OAuthToken
from starlette.types import ASGIApp

from tests.helpers import form_fields, query


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.asynccontextmanager
async def serve(app: ASGIApp, port: int) -> AsyncIterator[str]:
    """Run ``app`` on 127.0.0.1:port over real HTTP until the block exits."""
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    for _ in range(200):
        if server.started:
            break
        if task.done():
            task.result()
        await asyncio.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)


class MemoryTokenStorage:
    """The MCP SDK client's TokenStorage, in memory."""

    def __init__(self) -> None:
        self.tokens: OAuthToken | None = None
        self.client_info: OAuthClientInformationFull | None = None

    async def get_tokens(self) -> OAuthToken | None:
        return self.tokens

    async def set_tokens(self, tokens: OAuthToken) -> None:
        self.tokens = tokens

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        return self.client_info

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        self.client_info = client_info


class ConsentBrowser:
    """Acts as the user's browser: opens the authorization URL, approves, captures the redirect."""

    def __init__(self, headers: dict[str, str] | None = None, decision: str = "approve") -> None:
        self.headers = headers or {}
        self.decision = decision
        self.result: asyncio.Future[AuthorizationCodeResult] | None = None
        self.visits = 0

    async def redirect_handler(self, authorization_url: str) -> None:
        self.visits += 1
        loop = asyncio.get_running_loop()
        self.result = loop.create_future()
        async with httpx.AsyncClient(headers=self.headers, timeout=10) as browser:
            response = await browser.get(authorization_url)
            while response.status_code in (302, 303) and "request_id" in response.headers["location"]:
                response = await browser.get(response.headers["location"])
            assert response.status_code == 200, response.text
            fields = form_fields(response.text)
            action = str(response.url.copy_with(query=None))
            answer = await browser.post(action, data={**fields, "decision": self.decision})
            assert answer.status_code == 303, answer.text
        params = query(answer.headers["location"])
        self.result.set_result(AuthorizationCodeResult(
            code=params.get("code", ""), state=params.get("state"), iss=params.get("iss")))

    async def callback_handler(self) -> AuthorizationCodeResult:
        assert self.result is not None
        return await self.result
