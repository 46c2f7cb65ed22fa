"""Rules of RFC 7592 client management: the registration access token, and what a read or an
update of a registered client may see and change.

Kept apart from ``clients.py`` (registration metadata and authentication) so each stays small;
``AuthorizationServer.read_client``, ``update_client`` and ``delete_client`` call these.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from oauth_server import clients, tokens
from oauth_server.errors import InvalidClientMetadata, InvalidToken
from oauth_server.records import Client
from oauth_server.settings import OAuthServerSettings

#: Compared against when no client (or no token digest) exists, so an unknown client id costs
#: the same digest and comparison as a known one.
_NO_DIGEST = tokens.digest("")


def with_registration_token(client: Client) -> tuple[Client, str]:
    """A new registration access token for ``client`` (RFC 7592 §3): 256 random bits, of which
    only the SHA-256 digest is stored, like every server-issued credential."""
    token = tokens.new_token()
    return dataclasses.replace(client, registration_access_token_digest=tokens.digest(token)), token


def registration_client_uri(issuer_url: str, client_id: str) -> str:
    """RFC 7592 §3: the client configuration endpoint of this client. The id is one path
    segment, percent-encoded (RFC 3986 §3.3), whatever characters it holds."""
    return f"{issuer_url.rstrip('/')}/register/{quote(client_id, safe='')}"


def information(client: Client, settings: OAuthServerSettings, secret: str | None = None,
                registration_token: str | None = None) -> dict[str, Any]:
    """RFC 7592 §3 client information response: RFC 7591's plus ``registration_client_uri``,
    and the registration access token only when it was just issued.

    A read does not rotate the token (§2.1 leaves it to the server: "MAY"), and we do not echo
    it back either: the client already holds it, and repeating a bearer credential in every
    read response only multiplies the places it can leak from (logs, caches, debuggers). A
    client secret is shown only when just issued: only its digest is stored.
    """
    body = clients.client_information(client, secret)
    if secret is None and client.client_secret_digest is not None:
        body["client_secret_expires_at"] = client.client_secret_expires_at or 0
    if registration_token is not None:
        body["registration_access_token"] = registration_token
    body["registration_client_uri"] = registration_client_uri(settings.issuer_url, client.client_id)
    return body


def check_token(client: Client | None, token: str | None) -> Client:
    """The client the registration access token manages, or ``InvalidToken`` (401).

    RFC 7592 §2.1-2.3: a missing or wrong token, and a client that does not exist, are all
    answered 401 alike, so the endpoint tells nobody which client ids exist. Digests are
    compared in constant time.
    """
    expected = client.registration_access_token_digest if client is not None else None
    matches = tokens.digest_matches(token or "", expected or _NO_DIGEST)
    if client is None or expected is None or not token or not matches:
        raise InvalidToken("the registration access token is invalid for this client")
    return client


def updated(current: Client, metadata: Mapping[str, Any], settings: OAuthServerSettings,
            now: int) -> tuple[Client, str | None]:
    """RFC 7592 §2.2: the client after a full replacement of its metadata, and a secret if one
    had to be issued.

    ``client_id`` is required and must be the current one; a ``client_secret``, if sent, must be
    the current one (both are checks, never changes). The other server-owned fields are ignored
    (``client_id_issued_at``, ``client_secret_expires_at``, the registration token and URI: §2.2
    "the authorization server MUST ignore" them). The metadata is validated exactly as at
    registration (``clients.build_client``). The current secret is kept while the method still
    uses one; a client moving to a secret method from ``none`` or ``private_key_jwt`` gets one.
    """
    if metadata.get("client_id") != current.client_id:
        raise InvalidClientMetadata("client_id is required and must be this client's client_id")
    sent_secret = metadata.get("client_secret")
    if sent_secret is not None and (not isinstance(sent_secret, str) or current.client_secret_digest is None
                                    or not tokens.digest_matches(sent_secret, current.client_secret_digest)):
        raise InvalidClientMetadata("client_secret does not match this client's secret")
    fields = {k: v for k, v in metadata.items() if k not in clients.SERVER_OWNED}
    client, secret = clients.build_client(fields, settings, now, client_id=current.client_id,
                                         allow_client_credentials=settings.dcr_client_credentials)
    if secret is not None and current.client_secret_digest is not None:
        client = dataclasses.replace(client, client_secret_digest=current.client_secret_digest,
                                     client_secret_expires_at=current.client_secret_expires_at)
        secret = None
    client = dataclasses.replace(client, client_id_issued_at=current.client_id_issued_at,
                                 registration_access_token_digest=current.registration_access_token_digest)
    return client, secret
