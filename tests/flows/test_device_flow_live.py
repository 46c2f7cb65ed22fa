"""The RFC 8628 device flow end to end over real HTTP (uvicorn): the example server, a device
that polls, a "user" who signs in and decides through the real verification page like a browser
(form fields and anti-forgery token parsed from the HTML), and the MCP Python SDK calling a tool
with the device's token. Approval, denial and expiry."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import httpx2
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client

from oauth_server import MemoryOAuthServerModel, OAuthServer
from tests.conftest import build_app
from tests.device_helpers import DEVICE_GRANT, error_of
from tests.example.running import running_example
from tests.flows.live import free_port, serve
from tests.helpers import FrozenClock, form_fields
from tests.security.test_device_flow import LIFETIME, device_settings


class Device:
    """A device with no browser: registers (as mcp-remote --device-code does), asks for codes, polls."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http
        self.client_id = ""

    async def register(self) -> None:
        response = await self.http.post("/register", json={
            "client_name": "Living-room MCP device", "redirect_uris": ["http://127.0.0.1:33418/callback"],
            "grant_types": [DEVICE_GRANT, "refresh_token"], "response_types": ["code"],
            "token_endpoint_auth_method": "none"})
        assert response.status_code == 201, response.text
        self.client_id = response.json()["client_id"]

    async def start(self, resource: str) -> dict[str, Any]:
        response = await self.http.post("/device_authorization", data={
            "client_id": self.client_id, "scope": "mcp:tools", "resource": resource})
        assert response.status_code == 200, response.text
        return dict(response.json())

    async def poll(self, device_code: str) -> httpx.Response:
        return await self.http.post("/token", data={"grant_type": DEVICE_GRANT, "device_code": device_code,
                                                    "client_id": self.client_id})


async def user_decides(verification_uri_complete: str, decision: str, username: str = "demo",
                       password: str = "demo", client_name: str = "Living-room MCP device") -> httpx.Response:
    """A browser: open the link from the device, submit the pre-filled code, sign in and decide."""
    async with httpx.AsyncClient(timeout=10) as browser:
        entry = await browser.get(verification_uri_complete)
        assert entry.status_code == 200, entry.text
        fields = form_fields(entry.text)
        action = str(entry.url.copy_with(query=None))
        prefilled = entry.text.split('name="user_code" value="', 1)[1].split('"', 1)[0]
        confirm = await browser.post(action, data={**fields, "user_code": prefilled})
        assert confirm.status_code == 200 and client_name in confirm.text, confirm.text
        return await browser.post(action, data={**form_fields(confirm.text), "decision": decision,
                                                "username": username, "password": password})


async def call_whoami(mcp_url: str, access_token: str) -> str:
    async with (
        httpx2.AsyncClient(headers={"Authorization": f"Bearer {access_token}"}, timeout=30) as http,
        streamable_http_client(mcp_url, http_client=http) as (read, write, *_),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        result = await session.call_tool("whoami", {})
        return str(result.content[0].text)  # type: ignore[union-attr]


async def test_device_flow_approved_through_the_page_then_a_tool_call(tmp_path: Path) -> None:
    async with running_example(tmp_path) as base, httpx.AsyncClient(base_url=base, timeout=10) as http:
        metadata = (await http.get("/.well-known/oauth-authorization-server")).json()
        assert metadata["device_authorization_endpoint"] == f"{base}/device_authorization"
        device = Device(http)
        await device.register()
        started = await device.start(f"{base}/mcp")
        assert error_of(await device.poll(started["device_code"])) == "authorization_pending"
        assert error_of(await device.poll(started["device_code"])) == "slow_down"  # interval now 10 s
        done = await user_decides(started["verification_uri_complete"], "approve")
        assert done.status_code == 200 and "Device connected" in done.text, done.text
        await asyncio.sleep(started["interval"] + 5.2)
        tokens = await device.poll(started["device_code"])
        assert tokens.status_code == 200, tokens.text
        body = tokens.json()
        assert body["scope"] == "mcp:tools" and "refresh_token" in body
        whoami = await call_whoami(f"{base}/mcp", body["access_token"])
        assert '"demo"' in whoami and "mcp:tools" in whoami, whoami
        replay = await device.poll(started["device_code"])
        assert error_of(replay) == "invalid_grant"


async def test_device_flow_denied_through_the_page(tmp_path: Path) -> None:
    async with running_example(tmp_path) as base, httpx.AsyncClient(base_url=base, timeout=10) as http:
        device = Device(http)
        await device.register()
        started = await device.start(f"{base}/mcp")
        wrong_password = await user_decides(started["verification_uri_complete"], "approve", password="nope")
        assert wrong_password.status_code == 401
        done = await user_decides(started["verification_uri_complete"], "deny")
        assert done.status_code == 200 and "Request denied" in done.text
        response = await device.poll(started["device_code"])
        assert response.status_code == 400 and error_of(response) == "access_denied"


async def test_device_flow_expires_over_http() -> None:
    """On a frozen clock served by uvicorn: past ``expires_in`` the page refuses the code and the
    device gets ``expired_token``."""
    clock = FrozenClock()
    port = free_port()
    server = OAuthServer(MemoryOAuthServerModel(), device_settings(
        issuer_url=f"http://127.0.0.1:{port}", resource_server_url=f"http://127.0.0.1:{port}/mcp",
        authorization_url=f"http://127.0.0.1:{port}/consent"), clock=clock)
    async with serve(build_app(server), port) as base, httpx.AsyncClient(base_url=base, timeout=10) as http:
        registered = await http.post("/register", json={"redirect_uris": [], "grant_types": [DEVICE_GRANT],
                                                         "token_endpoint_auth_method": "none",
                                                         "client_name": "Living-room MCP device"})
        device = Device(http)
        device.client_id = registered.json()["client_id"]
        started = await device.start(f"{base}/mcp")
        clock.advance(LIFETIME)
        async with httpx.AsyncClient(timeout=10, headers={"x-test-user": "alice"}) as browser:
            entry = await browser.get(started["verification_uri_complete"])
            refused = await browser.post(f"{base}/device", data={**form_fields(entry.text),
                                                                 "user_code": started["user_code"]})
            assert refused.status_code == 400 and "not valid or has expired" in refused.text
        assert error_of(await device.poll(started["device_code"])) == "expired_token"
