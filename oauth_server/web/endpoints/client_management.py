"""GET/PUT/DELETE /register/{client_id}: RFC 7592 client configuration endpoint.

Authorized by the registration access token that /register returned (RFC 7592 §1.2, sent as
an RFC 6750 Bearer token). The rules are ``AuthorizationServer.read_client``,
``update_client`` and ``delete_client``; this module only parses HTTP.
"""

from __future__ import annotations

from fastapi import APIRouter
from starlette.convertors import Convertor, register_url_convertor
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from oauth_server.errors import InvalidToken
from oauth_server.web import cors
from oauth_server.web.context import RouterContext, read_client_metadata
from oauth_server.web.endpoints.register import REGISTRATION_SCHEMA
from oauth_server.web.errors import NO_STORE, error_response
from oauth_server.web.openapi import COMMON_ERRORS, json_errors


class _AnyClientId(Convertor[str]):
    """The rest of the path, whatever it holds. Starlette's ``path`` convertor is ``.*``, which
    stops at a newline: a percent-encoded one (``%0A``) in the id would make the route vanish
    (404) instead of answering 401 like any other unknown client (RFC 7592 §2.1)."""

    regex = r"[\s\S]*"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("oauth_client_id", _AnyClientId())


def bearer_token(request: Request) -> str | None:
    """RFC 6750 §2.1: ``Authorization: Bearer <token>`` (scheme case-insensitive), else None."""
    scheme, _, token = (request.headers.get("authorization") or "").partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


def token_error(exc: InvalidToken, sent: bool) -> JSONResponse:
    """RFC 6750 §3: 401 with ``WWW-Authenticate: Bearer``, naming the error when a token came
    (§3.1: a request without one gets no error code in the challenge)."""
    challenge = 'Bearer error="invalid_token"' if sent else "Bearer"
    return error_response(exc, {"WWW-Authenticate": challenge})


def add_routes(router: APIRouter, ctx: RouterContext) -> None:
    if not ctx.server.settings.dynamic_client_registration:
        return
    path = ctx.path("register") + "/{client_id:oauth_client_id}"
    server = ctx.server

    async def read_client(request: Request) -> Response:
        """RFC 7592 §2.1: the client's current registration."""
        await ctx.limit("register", request)
        token = bearer_token(request)
        try:
            info = await server.read_client(request.path_params["client_id"], token)
        except InvalidToken as exc:
            return token_error(exc, token is not None)
        return JSONResponse(info, headers=NO_STORE)

    async def update_client(request: Request) -> Response:
        """RFC 7592 §2.2: replace the client's metadata (send all of it, including client_id)."""
        await ctx.limit("register", request)
        token = bearer_token(request)
        if token is None:
            return token_error(InvalidToken("a registration access token is required"), False)
        metadata = await read_client_metadata(request)
        try:
            info = await server.update_client(request.path_params["client_id"], token, metadata)
        except InvalidToken as exc:
            return token_error(exc, True)
        return JSONResponse(info, headers=NO_STORE)

    async def delete_client(request: Request) -> Response:
        """RFC 7592 §2.3: delete the client and revoke every grant of it; 204."""
        await ctx.limit("register", request)
        token = bearer_token(request)
        try:
            await server.delete_client(request.path_params["client_id"], token)
        except InvalidToken as exc:
            return token_error(exc, token is not None)
        return Response(status_code=204, headers=NO_STORE)

    errors = json_errors(400, 401, *COMMON_ERRORS)
    # The endpoints read the path themselves (web/openapi.py), so the parameter is described here.
    client_id = {"parameters": [{"name": "client_id", "in": "path", "required": True, "schema": {"type": "string"}}]}
    router.add_api_route(path, read_client, methods=["GET"], tags=["oauth"], response_model=None,
                         summary="Read a registered client (RFC 7592)", responses=errors, openapi_extra=client_id)
    router.add_api_route(path, update_client, methods=["PUT"], tags=["oauth"], response_model=None,
                         summary="Update a registered client (RFC 7592)", responses=errors,
                         openapi_extra={**client_id, "requestBody": {"required": True, "content": {
                             "application/json": {"schema": REGISTRATION_SCHEMA}}}})
    router.add_api_route(path, delete_client, methods=["DELETE"], tags=["oauth"], response_model=None,
                         status_code=204, summary="Delete a registered client (RFC 7592)", responses=errors,
                         openapi_extra=client_id)
    cors.add_preflight(router, path, "GET, PUT, DELETE")
