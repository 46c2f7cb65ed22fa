"""CORS for the endpoints browser-based clients call (MCP Inspector): metadata, register, token, revoke.

Never on /authorize or the consent page: those are navigations, not fetches (RFC 9700 §4.16).
Credentials are not allowed cross-origin, so ``*`` is safe: these endpoints use no cookies.
"""

from __future__ import annotations

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

ALLOW_HEADERS = "Authorization, Content-Type, MCP-Protocol-Version"


def add_preflight(router: APIRouter, path: str, methods: str) -> None:
    async def preflight(request: Request) -> Response:
        return Response(status_code=204, headers={
            "Access-Control-Allow-Origin": "*",
            "Access-Control-Allow-Methods": f"{methods}, OPTIONS",
            "Access-Control-Allow-Headers": ALLOW_HEADERS,
            "Access-Control-Max-Age": "86400",
        })

    router.add_api_route(path, preflight, methods=["OPTIONS"], include_in_schema=False)


def add_method_not_allowed(router: APIRouter, path: str, allowed: str) -> None:
    """A path served by one route per method (each its own operationId) still answers other
    methods with 405 and the full ``Allow`` list (RFC 9110 §15.5.6)."""

    async def method_not_allowed() -> Response:
        return Response(status_code=405, headers={"Allow": allowed})

    router.add_api_route(path, method_not_allowed, methods=["PUT", "PATCH", "DELETE", "OPTIONS"],
                         include_in_schema=False)
