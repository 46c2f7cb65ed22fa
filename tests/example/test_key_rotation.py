"""Signing keys rotate while the split deployment serves, and no token stops working early.

The authorization server (the example, JWT access tokens, managed keys) runs in this process so
the test can call ``rotate_signing_keys()`` on it, as an operator's job would; the resource
server is the example with ``AUTH_ISSUER`` in another process, knowing the keys only through
the issuer's JWKS. The schedule (``oauth_server.signing``): the new key is published at once
and signs only after ``signing_key_propagation``; the old key stays published until the last
token it signed has expired. A resource server that meets a token with a ``kid`` it has not
cached fetches the JWK Set again (RFC 7517 §4.5; OpenID Connect Core §10.1.1), at most once per
``AUTH_JWKS_REFETCH_INTERVAL``.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx

from example.server import create_app
from oauth_server import OAuthServer
from tests.example.running import example_settings
from tests.example.split import SECRET, claims, example_processes, example_tokens, kid, mcp_status, refresh
from tests.flows.live import free_port, serve

#: Seconds a new key is published before it signs (the library's default is 300).
PROPAGATION = 2
#: Seconds an access token lives: long enough that the first one is still valid after the new
#: key has taken over, so the test shows old tokens working next to new ones.
LIFETIME = 8


async def published_kids(http: httpx.AsyncClient) -> list[str]:
    """The JWKS's key ids, the key that signs now first."""
    response = await http.get("/.well-known/jwks.json")
    assert response.status_code == 200
    return [key["kid"] for key in response.json()["keys"]]


async def test_keys_rotate_while_a_resource_server_in_another_process_verifies(tmp_path: Path) -> None:
    as_port, rs_port = free_port(), free_port()
    issuer = f"http://127.0.0.1:{as_port}"
    rs_mcp = f"http://127.0.0.1:{rs_port}/mcp"
    app = create_app(example_settings(
        tmp_path, as_port, access_token_format="jwt", key_encryption_secret=SECRET,
        signing_key_propagation=PROPAGATION, access_token_lifetime=LIFETIME, resource_urls=(rs_mcp,),
        rate_limit=False))
    server: OAuthServer = app.state.oauth_server
    resource_server = {"PORT": str(rs_port), "AUTH_ISSUER": issuer, "AUTH_ALLOW_LOOPBACK": "on",
                       "AUTH_JWKS_REFETCH_INTERVAL": "1", "LOG_LEVEL": "INFO"}

    with example_processes(tmp_path, resource_server) as (rs_process,):
        async with serve(app, as_port), httpx.AsyncClient(base_url=issuer, timeout=10) as http:
            before = await example_tokens(http, rs_mcp)
            old_kid = kid(before["access_token"])
            # The resource server learns the issuer and caches its JWKS: the old key only.
            assert (await mcp_status(http, rs_mcp, before["access_token"])).status_code == 200

            rotated_at = time.monotonic()
            new_kid = await server.rotate_signing_keys()
            assert new_kid != old_kid
            assert await published_kids(http) == [old_kid, new_kid], "published at once, signing later"
            during = await refresh(http, before)
            assert kid(during["access_token"]) == old_kid, "the new key must not sign before it propagated"
            assert (await mcp_status(http, rs_mcp, during["access_token"])).status_code == 200

            while (await published_kids(http))[0] != new_kid:
                assert time.monotonic() - rotated_at < PROPAGATION + 3, "the new key never took over"
                await asyncio.sleep(0.1)
            # The server counts whole seconds, so the new key may take over up to 1 s early.
            assert time.monotonic() - rotated_at >= PROPAGATION - 1
            after = await refresh(http, during)
            assert kid(after["access_token"]) == new_kid
            # A kid the resource server has not cached: it fetches the JWKS again and accepts.
            assert (await mcp_status(http, rs_mcp, after["access_token"])).status_code == 200

            # Tokens signed with the old key keep working until they expire: the key stays published.
            assert await published_kids(http) == [new_kid, old_kid]
            for tokens in (before, during):
                assert claims(tokens["access_token"])["exp"] > time.time()
                assert (await mcp_status(http, rs_mcp, tokens["access_token"])).status_code == 200

    refetches = [line for line in rs_process.log.read_text().splitlines() if "unknown key" in line]
    assert len(refetches) == 1 and new_kid in refetches[0], refetches
