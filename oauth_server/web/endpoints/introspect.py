"""POST /introspect: RFC 7662 token introspection, for resource servers and clients."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from oauth_server.errors import InvalidClient, InvalidRequest
from oauth_server.params import single
from oauth_server.web.client_auth import authenticate, client_error
from oauth_server.web.context import RouterContext, read_form
from oauth_server.web.errors import NO_STORE
from oauth_server.web.openapi import COMMON_ERRORS, form_body, json_errors

INTROSPECT_FORM = form_body({
    "token": None,
    "token_type_hint": "access_token or refresh_token",
    "client_id": None,
    "client_secret": None,
    "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer (private_key_jwt, RFC 7523)",
    "client_assertion": "the client's signed JWT (RFC 7523 §2.2)",
}, required=("token",))


def add_routes(router: APIRouter, ctx: RouterContext) -> None:
    async def introspect(request: Request) -> Response:
        """RFC 7662 §2.1: the caller authenticates as a client (§2.1: "MUST require some form of
        authorization"); the answer is ``{"active": false}`` for anything it may not see."""
        await ctx.limit("introspect", request)
        form = await read_form(request)
        try:
            client = await authenticate(ctx.server, request, form)
        except InvalidClient as exc:
            return client_error(request, exc)
        token = single(form, "token")
        if not token:
            raise InvalidRequest("token is required")
        body = await ctx.server.introspect(client, token, single(form, "token_type_hint"))
        return JSONResponse(body, headers=NO_STORE)

    router.add_api_route(ctx.path("introspect"), introspect, methods=["POST"], tags=["oauth"],
                         summary="Token introspection (RFC 7662)", response_model=None,
                         responses=json_errors(400, 401, *COMMON_ERRORS), openapi_extra=INTROSPECT_FORM)
