"""RFC 8414 authorization server metadata (also at the OpenID Connect discovery location) and
RFC 9728 protected resource metadata."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

from fastapi import APIRouter
from starlette.responses import JSONResponse, Response

from oauth_server.client_assertion import SIGNING_ALGORITHMS
from oauth_server.clients import AUTH_METHODS
from oauth_server.scopes import resource_scopes
from oauth_server.web.context import RouterContext

# Access-Control-Allow-Origin is added by the router's route class, as on every fetch endpoint.
METADATA_HEADERS = {"Cache-Control": "public, max-age=3600"}


def authorization_server_metadata(ctx: RouterContext) -> dict[str, Any]:
    settings = ctx.server.settings
    doc: dict[str, Any] = {
        "issuer": settings.issuer_url,  # RFC 8414 §3.3: identical to the issuer, no added slash
        "authorization_endpoint": ctx.endpoint_url("authorize"),
        "token_endpoint": ctx.endpoint_url("token"),
        "revocation_endpoint": ctx.endpoint_url("revoke"),
        "scopes_supported": list(settings.scopes_supported),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        # Exactly the grants /token dispatches (``grants.dispatch.grant_table``).
        "grant_types_supported": list(ctx.server.grants),
        "token_endpoint_auth_methods_supported": list(AUTH_METHODS),
        "revocation_endpoint_auth_methods_supported": list(AUTH_METHODS),
        "introspection_endpoint": ctx.endpoint_url("introspect"),  # RFC 8414 §2 / RFC 7662
        "introspection_endpoint_auth_methods_supported": list(AUTH_METHODS),
        "code_challenge_methods_supported": ["S256"],
        "authorization_response_iss_parameter_supported": True,  # RFC 9207 §3
        "client_id_metadata_document_supported": settings.client_id_metadata_documents,
    }
    # RFC 8414 §2: the algorithms private_key_jwt assertions may use (RFC 7523).
    doc["token_endpoint_auth_signing_alg_values_supported"] = list(SIGNING_ALGORITHMS)
    doc["revocation_endpoint_auth_signing_alg_values_supported"] = list(SIGNING_ALGORITHMS)
    doc["introspection_endpoint_auth_signing_alg_values_supported"] = list(SIGNING_ALGORITHMS)
    if settings.device_authorization_grant:  # RFC 8628 §4
        doc["device_authorization_endpoint"] = ctx.endpoint_url("device_authorization")
    if settings.dynamic_client_registration:
        doc["registration_endpoint"] = ctx.endpoint_url("register")
    if ctx.server.signing is not None:
        doc["jwks_uri"] = ctx.endpoint_url(".well-known/jwks.json")
    if settings.service_documentation_url:
        doc["service_documentation"] = settings.service_documentation_url
    return doc


def protected_resource_metadata(ctx: RouterContext) -> dict[str, Any]:
    settings = ctx.server.settings
    doc: dict[str, Any] = {
        "resource": settings.resource_server_url,
        "authorization_servers": [settings.issuer_url],
        # MCP 2026-07-28 (Refresh Tokens): offline_access is the AS's, "not a resource requirement".
        "scopes_supported": resource_scopes(settings.scopes_supported),
        "bearer_methods_supported": ["header"],
    }
    if settings.resource_name:
        doc["resource_name"] = settings.resource_name
    return doc


def openid_configuration_paths(ctx: RouterContext) -> tuple[str, ...]:
    """OpenID Connect Discovery 1.0 §4.1 appends ``/.well-known/openid-configuration`` to the
    issuer; RFC 8414 §3.1 and §5 insert it before the issuer's path. The same for a path-less issuer."""
    appended = f"{ctx.base_path}/.well-known/openid-configuration"
    inserted = f"/.well-known/openid-configuration{ctx.base_path}"
    return (appended,) if appended == inserted else (appended, inserted)


def protected_resource_metadata_path(resource_url: str) -> str:
    """RFC 9728 §3.1: the well-known segment goes between host and the resource's path."""
    path = urlsplit(resource_url).path.rstrip("/")
    return f"/.well-known/oauth-protected-resource{path}"


def protected_resource_metadata_url(resource_url: str) -> str:
    parts = urlsplit(resource_url)
    return f"{parts.scheme}://{parts.netloc}{protected_resource_metadata_path(resource_url)}"


def add_routes(router: APIRouter, ctx: RouterContext) -> None:
    as_doc = authorization_server_metadata(ctx)
    as_body = bytes(JSONResponse(as_doc).body)

    async def get_authorization_server_metadata() -> Response:
        """RFC 8414 §3: the authorization server's metadata."""
        return _cached(as_body)

    router.add_api_route(
        f"/.well-known/oauth-authorization-server{ctx.base_path}",
        get_authorization_server_metadata, methods=["GET"], tags=["metadata"],
        summary="Authorization server metadata (RFC 8414)",
    )

    async def get_openid_configuration() -> Response:
        """The RFC 8414 document, unchanged, at the OpenID Connect discovery locations.

        MCP 2026-07-28: authorization servers "MUST provide at least one" of RFC 8414 and
        OpenID Connect Discovery 1.0, and clients "MUST support both", trying RFC 8414 first.
        RFC 8414 §5: the ``openid-configuration`` identifier's "usage in this specification is
        actually referring to a general OAuth 2.0 feature and is not specific to OpenID
        Connect", and for an issuer with a path "it may be necessary to publish metadata at both
        locations": appended (OIDC Discovery §4.1, ``/tenant1/.well-known/openid-configuration``)
        and inserted (``/.well-known/openid-configuration/tenant1``); MCP clients try both.

        It claims no OpenID Connect feature: no ``openid`` scope, ID token, ``userinfo_endpoint``,
        ``subject_types_supported`` or ``id_token_signing_alg_values_supported``. Discovery §3
        makes the last two REQUIRED of an OpenID Provider, which this server is not: inventing
        them would invite relying parties to ask for ID tokens we never issue. A strict OIDC
        parser may refuse the document and fall back to RFC 8414, where it is complete. Its
        ``issuer`` is ours, as Discovery §4.3 and RFC 8414 §3.3 require.
        """
        return _cached(as_body)

    for path in openid_configuration_paths(ctx):
        router.add_api_route(
            path, get_openid_configuration, methods=["GET"], tags=["metadata"],
            summary="Authorization server metadata at an OpenID Connect discovery location",
        )

    for resource in ctx.server.settings.resources:
        router.add_api_route(
            protected_resource_metadata_path(resource), _protected_resource_endpoint(ctx, resource),
            methods=["GET"], tags=["metadata"], summary="Protected resource metadata (RFC 9728)",
        )


def _protected_resource_endpoint(ctx: RouterContext, resource: str) -> Callable[[], Awaitable[Response]]:
    body = bytes(JSONResponse(protected_resource_metadata_for(ctx, resource)).body)

    async def get_protected_resource_metadata() -> Response:
        """RFC 9728 §3: metadata of the protected MCP resource."""
        return _cached(body)

    return get_protected_resource_metadata


def protected_resource_metadata_for(ctx: RouterContext, resource: str) -> dict[str, Any]:
    doc = protected_resource_metadata(ctx)
    doc["resource"] = resource
    return doc


def _cached(body: bytes) -> Response:
    """The document rendered once at start; each request only wraps the bytes."""
    return Response(body, media_type="application/json", headers=METADATA_HEADERS)
