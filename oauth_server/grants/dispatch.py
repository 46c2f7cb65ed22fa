"""The token endpoint's grants: ``grant_type`` -> the handler that validates, consumes and mints.

The table is built once per server from its settings, so it is also exactly the list that
metadata advertises (RFC 8414 §2 ``grant_types_supported``); anything else is
``unsupported_grant_type`` (RFC 6749 §5.2). A new grant adds one entry here.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from oauth_server.errors import InvalidRequest, InvalidTarget, UnsupportedGrantType
from oauth_server.grants import authorization_code, client_credentials, device_code, jwt_bearer, refresh_token
from oauth_server.grants.identity_providers import IdentityProviders
from oauth_server.grants.issue import GrantContext, Issuance
from oauth_server.params import Params, single

#: ``(context, request parameters) -> issuance``, after client authentication.
GrantHandler = Callable[[GrantContext, Params], Awaitable[Issuance]]


def requested_resource(params: Params) -> str | None:
    """RFC 8707 §2: at most one ``resource`` at the token endpoint here; None: not sent."""
    resources = params.get("resource") or ()
    if len(resources) > 1:
        raise InvalidTarget("only one resource may be requested")
    return resources[0] if resources else None


async def _authorization_code(ctx: GrantContext, params: Params) -> Issuance:
    # Compared with the grant's resource after the code is consumed, so a mismatch burns it.
    return await authorization_code.redeem(
        ctx, single(params, "code") or "", single(params, "code_verifier"), single(params, "redirect_uri"),
        requested_resource(params),
    )


async def _refresh_token(ctx: GrantContext, params: Params) -> Issuance:
    return await refresh_token.refresh(
        ctx, single(params, "refresh_token") or "", single(params, "scope"), requested_resource(params))


async def _client_credentials(ctx: GrantContext, params: Params) -> Issuance:
    requested_resource(params)
    return await client_credentials.handle(ctx, params)


async def _device_code(ctx: GrantContext, params: Params) -> Issuance:
    # Compared with the grant's resource after the device code is consumed, so a mismatch burns it.
    return await device_code.redeem(ctx, single(params, "device_code") or "", requested_resource(params))


def grant_table(identity_providers: IdentityProviders | None, *, device: bool = False) -> dict[str, GrantHandler]:
    """The grants this server offers: always the code, refresh and client credentials grants
    (the last only to clients registered for it); the device grant (RFC 8628) when ``device``;
    the ID-JAG grant when providers are trusted."""
    table: dict[str, GrantHandler] = {
        "authorization_code": _authorization_code,
        "refresh_token": _refresh_token,
        client_credentials.GRANT_TYPE: _client_credentials,
    }
    if device:
        table[device_code.GRANT_TYPE] = _device_code
    if identity_providers is not None:
        providers = identity_providers

        async def _jwt_bearer(ctx: GrantContext, params: Params) -> Issuance:
            return await jwt_bearer.handle(providers, ctx, params)

        table[jwt_bearer.GRANT_TYPE] = _jwt_bearer
    return table


async def run(table: dict[str, GrantHandler], ctx: GrantContext, params: Params) -> Issuance:
    """Dispatch one token request by its ``grant_type``."""
    grant_type = single(params, "grant_type")
    if not grant_type:
        raise InvalidRequest("grant_type is required")
    handler = table.get(grant_type)
    if handler is None:
        raise UnsupportedGrantType(f"grant_type must be one of: {', '.join(table)}")
    return await handler(ctx, params)
