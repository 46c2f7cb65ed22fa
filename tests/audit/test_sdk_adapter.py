"""The MCP SDK's provider methods (``OAuthServer``) emit the same events as our router."""

from __future__ import annotations

import secrets

from mcp.server.auth.provider import AuthorizationParams
from mcp.shared.auth import OAuthClientInformationFull
from pydantic import AnyUrl

from oauth_server import MemoryOAuthServerModel, OAuthServer, consent
from oauth_server.audit import CodeReplayDetected, TokenRevoked, TokensIssued, TokensRefreshed
from tests.audit.conftest import Recorder
from tests.fixtures.cimd.network import settings
from tests.helpers import CHALLENGE, REDIRECT, FrozenClock, query

INFO = OAuthClientInformationFull(client_id="sdk-client", redirect_uris=[AnyUrl(REDIRECT)],
                                  token_endpoint_auth_method="none", scope="mcp:tools",
                                  grant_types=["authorization_code", "refresh_token"])


async def approved_code(server: OAuthServer) -> str:
    """The SDK's /authorize, then our consent steps as a browser takes them; the code."""
    consent_url = await server.authorize(INFO, AuthorizationParams(
        state="s", scopes=["mcp:tools"], code_challenge=CHALLENGE, redirect_uri=AnyUrl(REDIRECT),
        redirect_uri_provided_explicitly=True))
    request_id, browser = query(consent_url)["request_id"], secrets.token_urlsafe(32)
    await server.open_consent(request_id, browser)
    form = await server.check_consent_form(request_id, browser, consent.form_token(browser, request_id))
    return query(await server.approve(form, "bob"))["code"]


async def test_sdk_provider_paths_emit_events(model: MemoryOAuthServerModel, clock: FrozenClock,
                                              recorder: Recorder) -> None:
    """Registration, code exchange, code replay, refresh and revocation through the SDK's methods."""
    server = OAuthServer(model, settings(), clock=clock, on_event=recorder)
    await server.register_client(INFO)
    code = await approved_code(server)
    loaded = await server.load_authorization_code(INFO, code)
    assert loaded is not None
    await server.exchange_authorization_code(INFO, loaded)
    assert await server.load_authorization_code(INFO, code) is None  # a replay: the grant is revoked
    assert recorder.kinds == ["client_registered", "consent_approved", "code_issued", "tokens_issued",
                              "code_replay_detected"]
    issued, replay = recorder.events[-2:]
    assert isinstance(issued, TokensIssued) and issued.grant_type == "authorization_code"
    assert isinstance(replay, CodeReplayDetected) and replay.grant_id == issued.grant_id
    assert replay.presented_by == "sdk-client" and code not in repr(replay)

    second = await server.load_authorization_code(INFO, await approved_code(server))
    assert second is not None
    tokens = await server.exchange_authorization_code(INFO, second)
    assert tokens.refresh_token is not None
    old = await server.load_refresh_token(INFO, tokens.refresh_token)
    assert old is not None
    new = await server.exchange_refresh_token(INFO, old, ["mcp:tools"])
    assert new.refresh_token is not None
    current = await server.load_refresh_token(INFO, new.refresh_token)
    assert current is not None
    await server.revoke_token(current)
    refreshed, revoked = recorder.events[-2:]
    assert isinstance(refreshed, TokensRefreshed) and refreshed.grant_id == second.grant_id
    assert isinstance(revoked, TokenRevoked) and revoked.grant_id == second.grant_id
    assert revoked.token_type == "refresh_token"
