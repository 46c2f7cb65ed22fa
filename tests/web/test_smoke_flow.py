"""The whole code flow over HTTP (in-process), end to end, on the memory model."""

from __future__ import annotations

import httpx

from tests.helpers import register, tokens_for


async def test_register_authorize_consent_token_refresh_revoke(http: httpx.AsyncClient) -> None:
    client = await register(http)
    tokens = await tokens_for(http, client.client_id)
    assert tokens["token_type"] == "Bearer" and tokens["scope"] == "mcp:tools"
    call = await http.post("/mcp", headers={"Authorization": f"Bearer {tokens['access_token']}"})
    assert call.status_code == 200 and call.json()["subject"] == "alice"
    refreshed = await http.post("/token", data={"grant_type": "refresh_token", "client_id": client.client_id,
                                                 "refresh_token": tokens["refresh_token"]})
    assert refreshed.status_code == 200, refreshed.text
    new = refreshed.json()
    assert new["refresh_token"] != tokens["refresh_token"]
    revoked = await http.post("/revoke", data={"token": new["refresh_token"], "client_id": client.client_id})
    assert revoked.status_code == 200
    call = await http.post("/mcp", headers={"Authorization": f"Bearer {new['access_token']}"})
    assert call.status_code == 401
