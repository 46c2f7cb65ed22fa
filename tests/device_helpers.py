"""Drive the RFC 8628 device flow over HTTP as a device and a browser would (shared by the tests)."""

from __future__ import annotations

import re
from typing import Any

import httpx

from tests.helpers import form_fields

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"


async def register_device_client(http: httpx.AsyncClient, **metadata: Any) -> tuple[str, str | None]:
    """A public device client (as mcp-remote --device-code registers): client_id, secret."""
    payload: dict[str, Any] = {"redirect_uris": [], "grant_types": [DEVICE_GRANT, "refresh_token"],
                               "token_endpoint_auth_method": "none", "client_name": "Kitchen TV"}
    payload.update(metadata)
    response = await http.post("/register", json=payload)
    assert response.status_code == 201, response.text
    return response.json()["client_id"], response.json().get("client_secret")


async def start(http: httpx.AsyncClient, client_id: str, **extra: str) -> httpx.Response:
    return await http.post("/device_authorization", data={"client_id": client_id, **extra})


async def started(http: httpx.AsyncClient, client_id: str, **extra: str) -> dict[str, Any]:
    response = await start(http, client_id, **extra)
    assert response.status_code == 200, response.text
    return dict(response.json())


async def poll(http: httpx.AsyncClient, client_id: str, device_code: str, **extra: str) -> httpx.Response:
    return await http.post("/token", data={"grant_type": DEVICE_GRANT, "device_code": device_code,
                                           "client_id": client_id, **extra})


def error_of(response: httpx.Response) -> str:
    return str(response.json().get("error"))


async def entry_form(http: httpx.AsyncClient, query: str = "") -> dict[str, str]:
    """GET the verification page: its hidden fields and the pre-filled code."""
    page = await http.get(f"/device{query}")
    assert page.status_code == 200, page.text
    fields = form_fields(page.text)
    prefilled = re.search(r'name="user_code" value="([^"]*)"', page.text)
    fields["user_code"] = prefilled.group(1) if prefilled else ""
    return fields


async def enter_code(http: httpx.AsyncClient, user_code: str) -> httpx.Response:
    """Type ``user_code`` into the entry form and submit it, as a browser does."""
    fields = await entry_form(http)
    return await http.post("/device", data={**fields, "user_code": user_code})


async def decision_form(http: httpx.AsyncClient, user_code: str) -> dict[str, str]:
    page = await enter_code(http, user_code)
    assert page.status_code == 200, page.text
    fields = form_fields(page.text)
    assert "user_code" in fields, page.text
    return fields


async def decide(http: httpx.AsyncClient, user_code: str, decision: str, **headers: str) -> httpx.Response:
    fields = await decision_form(http, user_code)
    return await http.post("/device", data={**fields, "decision": decision}, headers=headers)
