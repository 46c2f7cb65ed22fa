"""POST /token: authorization_code and refresh_token grants (RFC 6749 §3.2, OAuth 2.1 §3.2)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form
from starlette.requests import Request
from starlette.responses import JSONResponse

from oauth_server.clients import ClientCredentials, credentials_from_request
from oauth_server.errors import InvalidClient
from oauth_server.records import Client
from oauth_server.web.context import RouterContext, read_form, single
from oauth_server.web.errors import COMMON_ERRORS, NO_STORE, error_response, json_errors


async def authenticate(ctx: RouterContext, request: Request, form: dict[str, list[str]]) -> Client:
    credentials: ClientCredentials = credentials_from_request(
        request.headers.get("authorization"), single(form, "client_id"), single(form, "client_secret")
    )
    return await ctx.server.authenticate_client(credentials)


def client_error(request: Request, exc: InvalidClient) -> JSONResponse:
    """RFC 6749 §5.2: a failed Basic attempt answers 401 with WWW-Authenticate."""
    headers = {}
    if (request.headers.get("authorization") or "").lower().startswith("basic"):
        headers["WWW-Authenticate"] = 'Basic realm="oauth"'
    return error_response(exc, headers)


def add_routes(router: APIRouter, ctx: RouterContext) -> None:
    async def token(
        request: Request,
        grant_type: Annotated[str, Form(description="authorization_code or refresh_token")],
        code: Annotated[str | None, Form()] = None,
        redirect_uri: Annotated[str | None, Form()] = None,
        code_verifier: Annotated[str | None, Form(description="PKCE verifier (RFC 7636)")] = None,
        refresh_token: Annotated[str | None, Form()] = None,
        scope: Annotated[str | None, Form()] = None,
        resource: Annotated[str | None, Form(description="RFC 8707 resource indicator")] = None,
        client_id: Annotated[str | None, Form()] = None,
        client_secret: Annotated[str | None, Form()] = None,
    ) -> JSONResponse:
        """Exchange a code or a refresh token for tokens. Responses are never cached."""
        await ctx.limit("token", request)
        form = await read_form(request)
        try:
            client = await authenticate(ctx, request, form)
        except InvalidClient as exc:
            return client_error(request, exc)
        await ctx.limit("token_client", request, client.client_id)
        body = await ctx.server.token(client, form)
        return JSONResponse(body, headers=NO_STORE)

    router.add_api_route(ctx.path("token"), token, methods=["POST"], tags=["oauth"], summary="Token endpoint",
                         responses=json_errors(400, 401, *COMMON_ERRORS))
