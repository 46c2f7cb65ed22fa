"""A storage outage is a 503 with an OAuth error body, never a 500 or a traceback, anywhere."""

from __future__ import annotations

import httpx
import pytest

from oauth_server import MemoryOAuthServerModel, OAuthServer, OAuthServerSettings
from oauth_server.errors import StorageUnavailable
from tests.conftest import ISSUER, build_app
from tests.helpers import REDIRECT, authorize_params, register, tokens_for


class FlakyModel(MemoryOAuthServerModel):
    """The memory model with a switch that makes every call fail as a lost database would."""

    down = False

    def __getattribute__(self, name: str) -> object:
        attribute = super().__getattribute__(name)
        if name.startswith(("get_", "save_", "consume_", "rotate_", "revoke_", "bind_")) and \
                super().__getattribute__("down"):
            async def unavailable(*args: object, **kwargs: object) -> None:
                raise StorageUnavailable("database unreachable")
            return unavailable
        return attribute


@pytest.fixture
def flaky() -> FlakyModel:
    return FlakyModel()


async def test_every_endpoint_answers_503_during_an_outage_and_recovers(flaky: FlakyModel) -> None:
    server = OAuthServer(flaky, OAuthServerSettings(
        issuer_url=ISSUER, resource_server_url=f"{ISSUER}/mcp", authorization_url=f"{ISSUER}/consent",
        scopes_supported=("mcp:tools",),
    ))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=build_app(server)), base_url=ISSUER,
                                 headers={"x-test-user": "alice"}) as http:
        client = await register(http)
        tokens = await tokens_for(http, client.client_id)
        flaky.down = True
        responses = [
            await http.post("/register", json={"redirect_uris": [REDIRECT], "token_endpoint_auth_method": "none"}),
            await http.get("/authorize", params=authorize_params(client.client_id)),
            await http.get("/consent", params={"request_id": "x" * 43}),
            await http.post("/token", data={"grant_type": "refresh_token", "client_id": client.client_id,
                                            "refresh_token": tokens["refresh_token"]}),
            await http.post("/revoke", data={"token": "x", "client_id": client.client_id}),
        ]
        for response in responses:
            assert response.status_code == 503, (response.request.url, response.text)
            assert response.json()["error"] == "temporarily_unavailable"
        bearer = await http.post("/mcp", headers={"Authorization": f"Bearer {tokens['access_token']}"})
        assert bearer.status_code == 503
        flaky.down = False
        assert (await http.post("/mcp", headers={"Authorization": f"Bearer {tokens['access_token']}"})).status_code \
            == 200
