"""Events made from our records, so that each emission point stays one line.

Each builder takes only records (which hold digests, never credentials) or, for the token
response, the ``Issuance``'s records: the raw strings next to them are never read here.
"""

from __future__ import annotations

from typing import Any

from oauth_server.audit.events import (
    ClientRegistered,
    ClientUpdated,
    ConsentDenied,
    TokenIntrospected,
    TokenRevoked,
    TokensIssued,
    TokensRefreshed,
    digest_ref,
)
from oauth_server.grants.issue import Issuance
from oauth_server.records import AccessToken, Client, PendingAuthorization, RefreshToken


def client_registered(client: Client, now: int) -> ClientRegistered:
    return ClientRegistered(
        time=now, client_id=client.client_id, client_name=client.client_name,
        token_endpoint_auth_method=client.token_endpoint_auth_method, grant_types=client.grant_types,
        redirect_uris=client.redirect_uris)


def client_updated(client: Client, now: int, secret_rotated: bool) -> ClientUpdated:
    return ClientUpdated(
        time=now, client_id=client.client_id, client_name=client.client_name,
        token_endpoint_auth_method=client.token_endpoint_auth_method, grant_types=client.grant_types,
        redirect_uris=client.redirect_uris, secret_rotated=secret_rotated)


def consent_denied(pending: PendingAuthorization, now: int) -> ConsentDenied:
    return ConsentDenied(time=now, client_id=pending.client_id, requested_scopes=pending.scopes,
                         resource=pending.resource)


def tokens_issued(grant_type: str, issuance: Issuance, now: int) -> TokensIssued:
    """``TokensRefreshed`` for the refresh_token grant, ``TokensIssued`` for every other one."""
    access = issuance.access
    kind = TokensRefreshed if grant_type == "refresh_token" else TokensIssued
    return kind(
        time=now, client_id=access.client_id, subject=access.subject, grant_id=access.grant_id,
        grant_type=grant_type, scopes=access.scopes, resource=access.resource,
        access_token_ref=digest_ref(access.token_digest),
        refresh_token_ref=None if issuance.refresh is None else digest_ref(issuance.refresh.token_digest),
        expires_at=access.expires_at)


def token_revoked(record: AccessToken | RefreshToken, now: int) -> TokenRevoked:
    return TokenRevoked(
        time=now, client_id=record.client_id, subject=record.subject, grant_id=record.grant_id,
        token_type="access_token" if isinstance(record, AccessToken) else "refresh_token",
        token_ref=digest_ref(record.token_digest))


def token_introspected(caller: Client, token_digest: str, record: AccessToken | RefreshToken | None,
                       answer: dict[str, Any], now: int) -> TokenIntrospected:
    """What ``caller`` learnt: the token's owner, subject and grant only when it was told them."""
    active = bool(answer.get("active"))
    shown = record if active else None
    return TokenIntrospected(
        time=now, client_id=caller.client_id,
        subject=None if shown is None else shown.subject,
        grant_id=None if shown is None else shown.grant_id,
        active=active,
        token_type=None if shown is None else ("access_token" if isinstance(shown, AccessToken) else "refresh_token"),
        token_client_id=None if shown is None else shown.client_id,
        token_ref=digest_ref(token_digest))
