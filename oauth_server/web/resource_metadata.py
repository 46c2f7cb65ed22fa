"""``protected_resource_router``: the RFC 9728 document for a resource server on its own.

A deployment in resource-server mode runs no authorization server of ours, so it has no
``mcp_auth_router``; MCP clients still need ``/.well-known/oauth-protected-resource/...`` to
learn which authorization servers to use (MCP authorization, "Authorization Server
Discovery"). Served like the authorization server router's metadata: fetched by browser-based
clients, so with ``Access-Control-Allow-Origin: *`` and a GET preflight (``web.cors``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

from fastapi import APIRouter
from starlette.responses import JSONResponse, Response

from oauth_server.scopes import is_scope_token
from oauth_server.settings import LOCAL_HOSTS
from oauth_server.web import cors
from oauth_server.web.endpoints.metadata import METADATA_HEADERS, protected_resource_metadata_path


def _check_resource_url(url: str) -> None:
    """RFC 9728 §2: an https URL without a fragment (http only on localhost, for development)."""
    parts = urlsplit(url)
    local_http = parts.scheme == "http" and (parts.hostname or "") in LOCAL_HOSTS
    if (parts.scheme != "https" and not local_http) or not parts.netloc or "#" in url:
        raise ValueError(f"resource_url must be an absolute https URL without a fragment, got {url!r}")


def protected_resource_document(
    resource_url: str,
    authorization_servers: Iterable[str],
    scopes_supported: Iterable[str] = (),
    resource_name: str | None = None,
    bearer_methods: Iterable[str] = ("header",),
) -> dict[str, Any]:
    """RFC 9728 §2: ``resource`` is the resource's identifier, exactly as clients use it in
    RFC 8707 ``resource`` parameters and as tokens name it in ``aud``."""
    servers = list(authorization_servers)
    if not servers:
        raise ValueError("authorization_servers must name at least one issuer (RFC 9728 §2)")
    doc: dict[str, Any] = {
        "resource": resource_url,
        "authorization_servers": servers,
        "bearer_methods_supported": list(bearer_methods),
    }
    scopes = list(scopes_supported)
    if scopes:
        if not all(is_scope_token(scope) for scope in scopes):
            raise ValueError(f"invalid scope names in {scopes!r}")
        doc["scopes_supported"] = scopes
    if resource_name:
        doc["resource_name"] = resource_name
    return doc


def protected_resource_router(
    resource_url: str,
    authorization_servers: Iterable[str],
    scopes_supported: Iterable[str] = (),
    resource_name: str | None = None,
    bearer_methods: Iterable[str] = ("header",),
) -> APIRouter:
    """Serve the protected resource metadata of ``resource_url`` at its RFC 9728 §3.1 path (the
    well-known segment inserted before the resource's path).

    ``app.include_router(protected_resource_router(rs.resource, rs.authorization_servers, ["mcp:tools"]))``
    """
    _check_resource_url(resource_url)
    doc = protected_resource_document(resource_url, authorization_servers, scopes_supported, resource_name,
                                      bearer_methods)
    body = bytes(JSONResponse(doc).body)
    path = protected_resource_metadata_path(resource_url)
    headers = {**METADATA_HEADERS, "Access-Control-Allow-Origin": "*"}

    async def get_protected_resource_metadata() -> Response:
        """RFC 9728 §3: metadata of the protected MCP resource."""
        return Response(body, media_type="application/json", headers=headers)

    router = APIRouter()
    router.add_api_route(path, get_protected_resource_metadata, methods=["GET"], tags=["metadata"],
                         summary="Protected resource metadata (RFC 9728)")
    cors.add_preflight(router, path, "GET")
    return router
