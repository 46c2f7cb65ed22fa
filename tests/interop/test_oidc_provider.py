"""Resource-server mode against panva/node-oidc-provider, a certified OpenID provider nobody here wrote.

``oidc_provider/provider.mjs`` runs the provider (pinned in ``package-lock.json``) on a loopback
port, mounted under ``/tenant`` so that its issuer has a path, with ``resourceIndicators`` (JWT
access tokens for our resource, RFC 9068) and ``clientCredentials`` (tokens without a browser).
Our resource server — ``BearerAuthMiddleware`` and ``protected_resource_router`` over a
``ResourceServer`` in a FastAPI app under uvicorn — discovers it and judges its tokens.

What the provider cannot do, and what stands in: it never mints a token that is already
expired, so the expiry case uses a client whose tokens live 3 s and waits them out; it never
signs with a key it does not publish or with ``alg: none``, so those two tokens are built here
from one of its real tokens' claims.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import shutil
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import FastAPI
from mcp.server.auth.middleware.auth_context import get_access_token
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from oauth_server import BearerAuthMiddleware, IssuerConfig, ResourceServer, protected_resource_router
from oauth_server.resource import VerifierUnavailable, oauth_metadata_url, oidc_metadata_url
from tests.flows.live import free_port, serve
from tests.interop.support import HERE, node_major, npm_ci, read_line_starting, unavailable

FIXTURE = HERE / "oidc_provider"
RS_CREDENTIALS = ("mcp-resource", "mcp-resource-secret")


@contextlib.asynccontextmanager
async def running_provider(resource: str, other_resource: str) -> AsyncIterator[tuple[str, str]]:
    """Start the provider; yields its issuer (``http://127.0.0.1:PORT/tenant``) and key id."""
    node = shutil.which("node")
    major = node_major(node) if node else None
    if node is None or major is None or major < 20:
        unavailable(f"node 20 or later is required (found {major})")
    npm_ci(FIXTURE)
    process = await asyncio.create_subprocess_exec(
        node, "provider.mjs", resource, other_resource, cwd=FIXTURE,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    assert process.stdout is not None and process.stderr is not None
    seen: list[str] = []
    try:
        kid = (await read_line_starting(process.stdout, "KID ", seen, timeout=30)).removeprefix("KID ")
        issuer = (await read_line_starting(process.stdout, "ISSUER ", seen, timeout=30)).removeprefix("ISSUER ")
        yield issuer, kid
    except BaseException:
        if process.returncode is None:
            process.kill()
        print("provider stdout:\n" + "".join(seen) + "\nstderr:\n" + (await process.stderr.read()).decode())
        raise
    finally:
        if process.returncode is None:
            process.terminate()
        await asyncio.wait_for(process.wait(), 10)


async def client_credentials(issuer: str, client_id: str, resource: str | None = None) -> str:
    """An access token from the provider's token endpoint (RFC 6749 §4.4, RFC 8707 ``resource``)."""
    form = {"grant_type": "client_credentials", "scope": "mcp:tools"}
    if resource is not None:
        form["resource"] = resource
    async with httpx.AsyncClient() as http:
        response = await http.post(f"{issuer}/token", data=form, auth=(client_id, f"{client_id}-secret"))
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


async def whoami(scope: Scope, receive: Receive, send: Send) -> None:
    """The MCP-ish endpoint: answers with the caller as MCP tools see it."""
    token = get_access_token()
    assert token is not None
    await JSONResponse({"subject": token.subject, "client_id": token.client_id, "scopes": token.scopes,
                        "iss": (token.claims or {}).get("iss")})(scope, receive, send)


def resource_app(rs: ResourceServer) -> FastAPI:
    app = FastAPI()
    app.include_router(protected_resource_router(rs.resource, rs.authorization_servers, ["mcp:tools"]))
    app.router.routes.append(Route("/mcp", BearerAuthMiddleware(whoami, rs, ["mcp:tools"]), methods=["POST"]))
    return app


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def forged(genuine: str, kid: str) -> tuple[str, str, str]:
    """From a genuine token's claims: signed by a key the provider does not publish (a new kid,
    and the provider's own kid), and unsigned with ``alg: none``."""
    claims: dict[str, Any] = jwt.decode(genuine, options={"verify_signature": False})
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    unknown = jwt.encode(claims, stranger, algorithm="RS256", headers={"typ": "at+jwt", "kid": "not-published"})
    impostor = jwt.encode(claims, stranger, algorithm="RS256", headers={"typ": "at+jwt", "kid": kid})
    header = b64(json.dumps({"alg": "none", "typ": "at+jwt", "kid": kid}).encode())
    unsigned = f"{header}.{b64(json.dumps(claims).encode())}."
    return unknown, impostor, unsigned


async def test_node_oidc_provider_tokens_at_our_resource_server() -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    resource, other_resource = f"{base}/mcp", f"{base}/other"
    async with running_provider(resource, other_resource) as (issuer, kid):
        config = IssuerConfig(issuer, discovery="oidc", leeway=1,
                              client_id=RS_CREDENTIALS[0], client_secret=RS_CREDENTIALS[1])
        rs = ResourceServer(resource, [config], allow_loopback=True, allow_http=True)
        async with serve(resource_app(rs), port), httpx.AsyncClient(base_url=base) as http:

            async def call(token: str | None) -> httpx.Response:
                headers = {"Authorization": f"Bearer {token}"} if token else {}
                return await http.post("/mcp", headers=headers)

            # RFC 9728: the resource names the provider as its authorization server.
            no_token = await call(None)
            assert no_token.status_code == 401
            assert f'resource_metadata="{base}/.well-known/oauth-protected-resource/mcp"' in (
                no_token.headers["www-authenticate"])
            document = (await http.get("/.well-known/oauth-protected-resource/mcp")).json()
            assert document["resource"] == resource and document["authorization_servers"] == [issuer]

            # A JWT access token (typ at+jwt, RFC 9068) for our resource: accepted.
            good = await client_credentials(issuer, "mcp-machine", resource)
            assert jwt.get_unverified_header(good)["typ"] == "at+jwt"
            accepted = await call(good)
            assert accepted.status_code == 200, accepted.text
            assert accepted.json() == {"subject": "mcp-machine", "client_id": "mcp-machine",
                                       "scopes": ["mcp:tools"], "iss": issuer}

            # The same provider's token for another resource (RFC 8707 audience): refused.
            elsewhere = await client_credentials(issuer, "mcp-machine", other_resource)
            assert jwt.decode(elsewhere, options={"verify_signature": False})["aud"] == other_resource
            assert (await call(elsewhere)).status_code == 401

            # Signed by a key the provider does not publish, under a new kid or under its own
            # kid, and alg none: refused (401 invalid_token, never 500 or 503).
            for token in forged(good, kid):
                refused = await call(token)
                assert refused.status_code == 401, refused.text
                assert 'error="invalid_token"' in refused.headers["www-authenticate"]

            # An opaque token, checked by RFC 7662 introspection with the RS's credentials.
            opaque = await client_credentials(issuer, "mcp-opaque")
            assert opaque.count(".") == 0
            introspected = await call(opaque)
            assert introspected.status_code == 200, introspected.text
            assert introspected.json()["subject"] == "mcp-opaque"

            # Expiry: a 3 s token is accepted, then refused once exp (+1 s leeway) has passed.
            short = await client_credentials(issuer, "mcp-short-lived", resource)
            expires = jwt.decode(short, options={"verify_signature": False})["exp"]
            assert (await call(short)).status_code == 200
            await asyncio.sleep(max(0.0, expires + 1.2 - time.time()))
            assert (await call(short)).status_code == 401

        await rs.aclose()


async def test_discovery_rules_against_node_oidc_provider() -> None:
    """The provider serves its metadata under its mount only: the OpenID Connect rule
    (appended) and the appended OAuth form. The RFC 8414 §3.1 location (inserted before the
    path) is outside the mount, and is served here by the host server forwarding to the
    provider's own discovery handler. Both rules then verify the provider's token."""
    port = free_port()
    resource = f"http://127.0.0.1:{port}/mcp"
    async with running_provider(resource, f"http://127.0.0.1:{port}/other") as (issuer, _):
        base = issuer.removesuffix("/tenant")
        async with httpx.AsyncClient() as http:
            oidc = await http.get(oidc_metadata_url(issuer))
            appended_oauth = await http.get(f"{issuer}/.well-known/oauth-authorization-server")
            inserted_oauth = await http.get(oauth_metadata_url(issuer))
        assert oidc_metadata_url(issuer) == f"{issuer}/.well-known/openid-configuration"
        assert oauth_metadata_url(issuer) == f"{base}/.well-known/oauth-authorization-server/tenant"
        for response in (oidc, appended_oauth, inserted_oauth):
            assert response.status_code == 200
            assert response.json()["issuer"] == issuer
            assert response.json()["jwks_uri"] == f"{issuer}/jwks"

        token = await client_credentials(issuer, "mcp-machine", resource)
        for kind in ("oidc", "oauth"):
            rs = ResourceServer(resource, [IssuerConfig(issuer, discovery=kind)], allow_loopback=True,
                                allow_http=True)
            record = await rs.verify(token)
            await rs.aclose()
            assert record is not None, kind
            assert (record.subject, record.issuer, record.audience) == ("mcp-machine", issuer, (resource,))
        # Without loopback allowed, the resource server refuses to fetch from 127.0.0.1 at all.
        strict = ResourceServer(resource, [issuer])
        with pytest.raises(VerifierUnavailable):
            await strict.verify(token)
        await strict.aclose()
