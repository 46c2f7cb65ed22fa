"""POST /register: RFC 7591 dynamic client registration."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import JSONResponse

from oauth_server.clients import CLIENT_CREDENTIALS, JWT_BEARER
from oauth_server.web.context import RouterContext, read_client_metadata
from oauth_server.web.errors import NO_STORE
from oauth_server.web.openapi import COMMON_ERRORS, json_errors

REGISTRATION_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "redirect_uris": {"type": "array", "items": {"type": "string"},
                          "description": "required with the authorization_code grant"},
        "token_endpoint_auth_method": {
            "type": "string", "enum": ["none", "client_secret_basic", "client_secret_post", "private_key_jwt"]},
        "jwks": {"type": "object", "description": "public keys for private_key_jwt (RFC 7523)"},
        "jwks_uri": {"type": "string", "description": "https URL of the public keys, instead of jwks"},
        "token_endpoint_auth_signing_alg": {"type": "string"},
        "grant_types": {"type": "array", "description": "client_credentials only when the server allows it "
                        "(dcr_client_credentials); jwt-bearer only with trusted identity providers",
                        "items": {"type": "string", "enum": ["authorization_code", "refresh_token",
                                                            CLIENT_CREDENTIALS, JWT_BEARER]}},
        "response_types": {"type": "array", "items": {"type": "string", "enum": ["code"]}},
        "scope": {"type": "string"},
        "client_name": {"type": "string", "maxLength": 256},
        "client_uri": {"type": "string"},
        "logo_uri": {"type": "string"},
        "tos_uri": {"type": "string"},
        "policy_uri": {"type": "string"},
        "contacts": {"type": "array", "items": {"type": "string"}},
        "software_id": {"type": "string"},
        "software_version": {"type": "string"},
        "application_type": {"type": "string", "enum": ["web", "native"]},
    },
}


def add_routes(router: APIRouter, ctx: RouterContext) -> None:
    if not ctx.server.settings.dynamic_client_registration:
        return

    async def register_client(request: Request) -> JSONResponse:
        """RFC 7591 §3.1: register a client. Returns 201 with the client information."""
        await ctx.limit("register", request)
        metadata = await read_client_metadata(request)
        info = await ctx.server.register(metadata)
        return JSONResponse(info, status_code=201, headers=NO_STORE)

    router.add_api_route(
        ctx.path("register"), register_client, methods=["POST"], status_code=201, tags=["oauth"],
        summary="Dynamic client registration (RFC 7591)", responses=json_errors(400, *COMMON_ERRORS),
        openapi_extra={"requestBody": {"required": True, "content": {"application/json": {
            "schema": REGISTRATION_SCHEMA}}}},
    )
