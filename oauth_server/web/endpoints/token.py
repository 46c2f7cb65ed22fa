"""POST /token: the grants of ``AuthorizationServer.grants`` (RFC 6749 §3.2, OAuth 2.1 §3.2)."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from oauth_server.errors import InvalidClient
from oauth_server.web.client_auth import authenticate, client_error
from oauth_server.web.context import RouterContext, read_form
from oauth_server.web.errors import NO_STORE
from oauth_server.web.openapi import COMMON_ERRORS, form_body, json_errors

TOKEN_FORM = form_body({
    "grant_type": "authorization_code, refresh_token, client_credentials, or "
                  "urn:ietf:params:oauth:grant-type:jwt-bearer (when identity providers are trusted)",
    "code": None,
    "redirect_uri": None,
    "code_verifier": "PKCE verifier (RFC 7636)",
    "refresh_token": None,
    "device_code": "RFC 8628 §3.4, with grant_type urn:ietf:params:oauth:grant-type:device_code",
    "scope": None,
    "assertion": "jwt-bearer: the identity provider's ID-JAG (RFC 7523 §2.1)",
    "resource": "RFC 8707 resource indicator",
    "client_id": None,
    "client_secret": None,
    "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer (private_key_jwt, RFC 7523)",
    "client_assertion": "the client's signed JWT (RFC 7523 §2.2)",
}, required=("grant_type",))


def add_routes(router: APIRouter, ctx: RouterContext) -> None:
    async def token(request: Request) -> Response:
        """Exchange a grant (code, refresh token, client credentials, ID-JAG) for tokens. Never cached."""
        await ctx.limit("token", request)
        form = await read_form(request)
        try:
            client = await authenticate(ctx.server, request, form)
        except InvalidClient as exc:
            return client_error(request, exc)
        await ctx.limit("token_client", request, client.client_id)
        body = await ctx.server.token(client, form)
        return JSONResponse(body, headers=NO_STORE)

    router.add_api_route(ctx.path("token"), token, methods=["POST"], tags=["oauth"], summary="Token endpoint",
                         response_model=None, responses=json_errors(400, 401, *COMMON_ERRORS),
                         openapi_extra=TOKEN_FORM)
