"""POST /revoke: RFC 7009 token revocation."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from oauth_server.errors import InvalidClient, InvalidRequest
from oauth_server.web.context import RouterContext, read_form, single
from oauth_server.web.endpoints.token import authenticate, client_error
from oauth_server.web.errors import COMMON_ERRORS, NO_STORE, json_errors


def add_routes(router: APIRouter, ctx: RouterContext) -> None:
    async def revoke(
        request: Request,
        token: Annotated[str, Form()],
        token_type_hint: Annotated[str | None, Form(description="access_token or refresh_token")] = None,
        client_id: Annotated[str | None, Form()] = None,
        client_secret: Annotated[str | None, Form()] = None,
    ) -> Response:
        """RFC 7009 §2.1: revoke a token and its grant. Unknown tokens answer 200 too."""
        await ctx.limit("revoke", request)
        form = await read_form(request)
        try:
            client = await authenticate(ctx, request, form)
        except InvalidClient as exc:
            return client_error(request, exc)
        value = single(form, "token")
        if not value:
            raise InvalidRequest("token is required")
        await ctx.server.revoke(client, value, single(form, "token_type_hint"))
        return JSONResponse({}, headers=NO_STORE)

    router.add_api_route(ctx.path("revoke"), revoke, methods=["POST"], tags=["oauth"],
                         summary="Token revocation (RFC 7009)", responses=json_errors(400, 401, *COMMON_ERRORS))
