"""The client_credentials grant (RFC 6749 §4.4, OAuth 2.1 §4.2; the MCP OAuth client credentials
extension): a confidential client obtains an access token for itself, no user involved.

Who may: only a client that authenticates (``client_secret_basic``, ``client_secret_post`` or
``private_key_jwt``; OAuth 2.1 §4.2 "MUST only be used by confidential clients") and that was
registered with this grant, which dynamic registration hands out only when the operator turns
``dcr_client_credentials`` on (anyone can register, so otherwise anyone could be a machine).

What it gets: an access token whose subject is the client itself (RFC 9068 §2.2: "In cases of
access tokens obtained through grants where no resource owner is involved, such as the client
credentials grant, the value of sub SHOULD correspond to an identifier the authorization server
uses to indicate the client application", so ``sub`` = ``client_id``, in the JWT and in
introspection), for one resource (RFC 8707; none sent means our MCP resource, as at /authorize),
with at most the scopes the client was registered for. No refresh token: RFC 6749 §4.4.3 "A
refresh token SHOULD NOT be included"; the client asks again with its credentials. Each token
is issued into a grant of its own, so revoking the token revokes that grant, as for any other.
"""

from __future__ import annotations

from oauth_server import scopes as scope_strings
from oauth_server import tokens
from oauth_server.clients import CLIENT_CREDENTIALS
from oauth_server.errors import InvalidGrant, InvalidScope, UnauthorizedClient
from oauth_server.grants.issue import GrantContext, Issuance, mint
from oauth_server.params import Params, single
from oauth_server.records import Client, Grant
from oauth_server.resources import canonical_resource
from oauth_server.settings import OAuthServerSettings

GRANT_TYPE = CLIENT_CREDENTIALS


def allowed_scopes(settings: OAuthServerSettings, client: Client) -> tuple[str, ...]:
    """What the client may have: its registered ``scope``; registered without one, the scopes
    any client gets without asking (``default_scopes``, else all supported). ``offline_access``
    never: it asks for a refresh token, and this grant issues none."""
    if client.scope is not None:
        limit = client.scope.split()
    elif settings.default_scopes is not None:
        limit = list(settings.default_scopes)
    else:
        limit = list(settings.scopes_supported)
    return tuple(s for s in limit if s in settings.scopes_supported and s != scope_strings.OFFLINE_ACCESS)


def granted_scopes(settings: OAuthServerSettings, client: Client, scope: str | None) -> tuple[str, ...]:
    """RFC 6749 §4.4.2 / §3.3: the requested scope, each one allowed; none requested: all allowed.
    Asking beyond what the client was registered for is ``invalid_scope`` rather than a quiet cut,
    so a misconfigured machine learns it at once."""
    allowed = allowed_scopes(settings, client)
    requested = scope_strings.parse(scope)
    if requested is None:
        return allowed
    requested = tuple(s for s in requested if s != scope_strings.OFFLINE_ACCESS) or allowed
    return scope_strings.require_subset(requested, allowed, "registered for this client")


async def handle(ctx: GrantContext, params: Params) -> Issuance:
    """The token endpoint's ``grant_type=client_credentials`` (after client authentication)."""
    client = ctx.client
    if client.is_public:
        raise UnauthorizedClient("client_credentials needs a confidential client")
    if GRANT_TYPE not in client.grant_types:
        raise UnauthorizedClient("client is not registered for the client_credentials grant")
    resource = canonical_resource(ctx.settings, params.get("resource") or [])
    scopes = granted_scopes(ctx.settings, client, single(params, "scope"))
    if not scopes and ctx.settings.scopes_supported:
        raise InvalidScope("the client is registered for no scope")
    return await issue_new_grant(ctx, subject=client.client_id, scopes=scopes, resource=resource,
                                 grant_lifetime=0)


async def issue_new_grant(ctx: GrantContext, *, subject: str, scopes: tuple[str, ...], resource: str,
                          grant_lifetime: int) -> Issuance:
    """A grant born at the token endpoint and its first tokens. ``grant_lifetime`` 0: access
    token only (the grant ends with it); otherwise refreshes may continue that long.

    The grant is stored before its tokens (``save_grant``, then ``save_tokens``), so a token
    never exists outside a grant, and revoking the grant removes every token of it.
    """
    grant_expires_at = ctx.now + grant_lifetime
    grant = Grant(grant_id=tokens.new_id(), client_id=ctx.client.client_id, subject=subject, scopes=scopes,
                  resource=resource, created_at=ctx.now,
                  expires_at=grant_expires_at + ctx.settings.access_token_lifetime)
    issuance = mint(ctx, grant_id=grant.grant_id, subject=subject, scopes=scopes, granted_scopes=scopes,
                    resource=resource, grant_expires_at=grant_expires_at)
    await ctx.model.save_grant(grant)
    if not await ctx.model.save_tokens(issuance.access, issuance.refresh):
        raise InvalidGrant("the grant was revoked")
    return issuance
