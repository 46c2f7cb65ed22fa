"""GET /.well-known/jwks.json: the public keys that verify our JWT access tokens (RFC 7517 §5)."""

from __future__ import annotations

import json

from fastapi import APIRouter
from starlette.responses import Response

from oauth_server.web.context import RouterContext

JWKS_PATH = "/.well-known/jwks.json"


def jwks_path(ctx: RouterContext) -> str:
    """Under the issuer's path (``/tenant/.well-known/jwks.json``), so issuers sharing a host do
    not share keys; metadata announces it as ``jwks_uri`` (RFC 8414 §2), the only way to find it."""
    return f"{ctx.base_path}{JWKS_PATH}"


def add_routes(router: APIRouter, ctx: RouterContext) -> None:
    if ctx.server.signing is None:
        return
    # A new key is published signing_key_propagation seconds before it signs: a resource
    # server that caches this document no longer than that already knows the next key.
    headers = {"Cache-Control": f"public, max-age={ctx.server.settings.signing_key_propagation}"}

    async def jwks() -> Response:
        """RFC 7517 §5 JWK Set: every key whose tokens may still be live, the signing key first."""
        body = json.dumps(await ctx.server.jwks(), separators=(",", ":")).encode()
        return Response(body, media_type="application/jwk-set+json", headers=headers)

    router.add_api_route(jwks_path(ctx), jwks, methods=["GET"], tags=["metadata"],
                         summary="JSON Web Key Set (RFC 7517)")
