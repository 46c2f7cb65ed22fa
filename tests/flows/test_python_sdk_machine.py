"""The MCP Python SDK's machine-to-machine and enterprise clients against the example, over real
HTTP (uvicorn), each calling a tool:

- ``ClientCredentialsOAuthProvider`` (client_secret_basic), its client registered dynamically
  with the example's ``DCR_CLIENT_CREDENTIALS=on``;
- ``PrivateKeyJWTOAuthProvider`` with ``SignedJWTParameters`` (private_key_jwt), its client
  created by the operator CLI (``clients create --grant-type client_credentials``);
- ``IdentityAssertionOAuthProvider`` (ext-auth enterprise-managed authorization, ID-JAG), its
  client created by the CLI, the identity provider's JWK Set served on loopback by uvicorn.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
import httpx2
from mcp import ClientSession
from mcp.client.auth.extensions.client_credentials import (
    ClientCredentialsOAuthProvider,
    PrivateKeyJWTOAuthProvider,
    SignedJWTParameters,
)
from mcp.client.auth.extensions.identity_assertion import IdentityAssertionOAuthProvider
from mcp.client.streamable_http import streamable_http_client

from oauth_server import keys
from tests.cli.conftest import invoke
from tests.example.running import running_example
from tests.flows.identity_provider import IdentityProvider
from tests.flows.live import MemoryTokenStorage, free_port, serve

SCOPES = "mcp:tools,mcp:prompts,mcp:admin"


async def whoami(base: str, auth: httpx2.Auth) -> dict[str, Any]:
    async with (
        httpx2.AsyncClient(auth=auth, timeout=30) as http,
        streamable_http_client(f"{base}/mcp", http_client=http) as (read, write, *_),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        result = await session.call_tool("whoami", {})
        assert not result.is_error, result
        return dict(json.loads(result.content[0].text))  # type: ignore[union-attr]


async def cli_create(tmp_path: Path, base: str, *args: str) -> dict[str, Any]:
    """``oauth-server clients create --json`` on the example's database, as an operator would."""
    result = await asyncio.to_thread(
        invoke, "clients", "create", "--json", "--database-url", f"sqlite+aiosqlite:///{tmp_path / 'example.db'}",
        "--issuer", base, "--scopes-supported", SCOPES, *args)
    assert result.exit_code == 0, result.output
    return dict(json.loads(result.stdout))


async def test_sdk_client_credentials_provider_calls_a_tool(tmp_path: Path) -> None:
    """MCP OAuth client credentials extension, client secret: DCR (switched on) hands out a
    machine client, the SDK gets a token without any user and calls ``whoami``; sub = client_id."""
    async with running_example(tmp_path, dcr_client_credentials=True) as base:
        async with httpx.AsyncClient(base_url=base) as http:
            registered = (await http.post("/register", json={
                "grant_types": ["client_credentials"], "token_endpoint_auth_method": "client_secret_basic",
                "scope": "mcp:tools", "client_name": "nightly job"})).json()
        provider = ClientCredentialsOAuthProvider(
            server_url=f"{base}/mcp", storage=MemoryTokenStorage(), client_id=registered["client_id"],
            client_secret=registered["client_secret"], scope="mcp:tools", issuer=base)
        caller = await whoami(base, provider)
        assert caller == {"user": registered["client_id"], "client_id": registered["client_id"],
                          "scopes": ["mcp:tools"]}
        assert provider.context.current_tokens is not None
        assert provider.context.current_tokens.refresh_token is None  # RFC 6749 §4.4.3


async def test_sdk_private_key_jwt_provider_calls_a_tool(tmp_path: Path) -> None:
    """private_key_jwt (RFC 7523 §2.2) for a machine client the operator created from the CLI."""
    key = keys.generate("ES256")
    (tmp_path / "jwks.json").write_text(json.dumps({"keys": [keys.public_jwk(key)]}))
    async with running_example(tmp_path) as base:
        created = await cli_create(tmp_path, base, "--name", "signer", "--grant-type", "client_credentials",
                                   "--auth-method", "private_key_jwt", "--jwks-file", str(tmp_path / "jwks.json"),
                                   "--scope", "mcp:tools mcp:prompts")
        client_id = created["client_id"]
        assert "client_secret" not in created and created["redirect_uris"] == []
        assertion = SignedJWTParameters(issuer=client_id, subject=client_id, signing_key=keys.to_pem(key).decode(),
                                        signing_algorithm="ES256").create_assertion_provider()
        provider = PrivateKeyJWTOAuthProvider(server_url=f"{base}/mcp", storage=MemoryTokenStorage(),
                                              client_id=client_id, assertion_provider=assertion, issuer=base)
        caller = await whoami(base, provider)
        assert caller["user"] == client_id and caller["client_id"] == client_id
        assert caller["scopes"] == ["mcp:tools"]  # the SDK asks for the scope of the 401 challenge


async def test_sdk_identity_assertion_provider_calls_a_tool(tmp_path: Path) -> None:
    """Enterprise-managed authorization: the SDK presents an ID-JAG from the test identity
    provider (jwt-bearer grant) and calls ``whoami`` as the provider's user, namespaced."""
    idp = IdentityProvider()
    idp_port = free_port()
    async with (
        serve(idp.app(), idp_port) as idp_base,
        running_example(tmp_path, idjag_issuer=idp.issuer, idjag_jwks_uri=f"{idp_base}/jwks.json",
                        idjag_allow_loopback=True) as base,
    ):
        async with httpx.AsyncClient(base_url=base) as http:
            metadata = (await http.get("/.well-known/oauth-authorization-server")).json()
        assert "urn:ietf:params:oauth:grant-type:jwt-bearer" in metadata["grant_types_supported"]
        created = await cli_create(tmp_path, base, "--name", "enterprise client", "--auth-method",
                                   "client_secret_post", "--grant-type",
                                   "urn:ietf:params:oauth:grant-type:jwt-bearer", "--scope", "mcp:tools")
        asked: list[tuple[str, str]] = []

        async def fetch_id_jag(audience: str, resource: str) -> str:
            asked.append((audience, resource))
            return idp.id_jag(audience=audience, resource=resource, client_id=created["client_id"])

        provider = IdentityAssertionOAuthProvider(
            server_url=f"{base}/mcp", storage=MemoryTokenStorage(), client_id=created["client_id"],
            client_secret=created["client_secret"], issuer=base, assertion_provider=fetch_id_jag)
        caller = await whoami(base, provider)
    assert asked == [(base, f"{base}/mcp")]
    assert caller == {"user": f"{idp.issuer}#alice", "client_id": created["client_id"], "scopes": ["mcp:tools"]}
    assert idp.fetches == 1
