"""A user's connected apps: the grants they approved, and revoking one of their own. No web imports.

Users of MCP servers ask to see which applications act for them and to take that back, as the
"connected apps" or "third-party access" pages of large providers let them. One entry per live
grant (RFC 6749 §1.3: the user's authorization of one client), newest first. Revoking ends the
grant as a replayed code does (RFC 9700 §4.5): every code and token of it is removed at once, so
the client's access token is refused at the resource and its refresh token at /token.

A user revokes only their own grants: the model checks the owner in the same atomic step as it
revokes (``OAuthServerModel.revoke_subject_grant``), and another user's grant id is answered as an
unknown one, so the page tells nobody which grant ids exist.

Anti-forgery: the same browser-binding secret as the consent page (``consent``). The page's
forms carry ``HMAC(browser secret, FORM_PURPOSE)``; a POST is acted on only with the cookie and
a matching tag, which a cross-site form cannot know (RFC 6749 §10.12, RFC 9700 §4.4). The
purpose string keeps the tag apart from consent tags, whose messages are request ids.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from urllib.parse import urlsplit

from oauth_server import cimd, tokens
from oauth_server.model.base import OAuthServerModel
from oauth_server.records import Client, Grant

#: A page shows at most this many apps; a person has a handful.
MAX_LISTED = 200
#: What the anti-forgery tag of the page's forms is computed over.
FORM_PURPOSE = "connected-apps:v1"
#: ``tokens.new_id`` makes 22 characters and the column holds 64: longer is no grant id of ours.
MAX_GRANT_ID_LENGTH = 64


@dataclass(frozen=True, slots=True)
class ConnectedApp:
    """One grant as a connected-apps page shows it.

    ``client_host`` is the host of a client ID metadata document URL ("claude.ai"), else None:
    the document's ``client_name`` is the client's own claim, while the host is what the fetch
    proved (draft-ietf-oauth-client-id-metadata-document §8.1), so a page shows both.
    ``last_used_at`` is when tokens were last issued in the grant (its code redeemed, or a
    refresh), not when a token was last presented: a bearer check writes nothing. None: not
    recorded (a model without ``record_grant_use``, or a grant from before it).
    """

    grant_id: str
    client_id: str
    client_name: str
    client_host: str | None
    scopes: tuple[str, ...]
    resource: str
    created_at: int
    last_used_at: int | None
    expires_at: int


def client_host(client_id: str) -> str | None:
    """The host of a metadata document client id (an https URL), else None."""
    return urlsplit(client_id).hostname if cimd.looks_like_url(client_id) else None


def describe(grant: Grant, client: Client | None) -> ConnectedApp:
    """The entry of ``grant``. The client record may be gone (deleted, or a document client no
    longer cached); the id is shown then. Nothing is fetched to describe a grant."""
    name = client.client_name if client is not None and client.client_name else grant.client_id
    return ConnectedApp(
        grant_id=grant.grant_id, client_id=grant.client_id, client_name=name,
        client_host=client_host(grant.client_id), scopes=grant.scopes, resource=grant.resource,
        created_at=grant.created_at, last_used_at=grant.last_used_at, expires_at=grant.expires_at,
    )


async def list_apps(model: OAuthServerModel, subject: str, now: int) -> list[ConnectedApp]:
    """The live grants of ``subject``, newest first: revoked and expired ones are left out (no
    credential of them can work any more)."""
    if not subject:
        return []
    grants = await model.list_grants(subject=subject, limit=MAX_LISTED)
    clients: dict[str, Client | None] = {}
    apps = []
    for grant in grants:
        if grant.expires_at <= now:
            continue
        if grant.client_id not in clients:
            clients[grant.client_id] = await model.get_client(grant.client_id)
        apps.append(describe(grant, clients[grant.client_id]))
    return apps


async def revoke(model: OAuthServerModel, subject: str, grant_id: str, now: int) -> bool:
    """End ``subject``'s grant ``grant_id``; False if there is no such grant of theirs (unknown,
    or another subject's: the same answer)."""
    if not subject or not grant_id or len(grant_id) > MAX_GRANT_ID_LENGTH:
        return False
    return await model.revoke_subject_grant(grant_id, subject, now)


def form_token(browser_secret: str) -> str:
    """The anti-forgery token of the connected-apps forms shown to this browser."""
    return tokens.keyed_tag(browser_secret, FORM_PURPOSE)


def form_is_valid(browser_secret: str | None, token: str | None) -> bool:
    """Whether a posted form came from a page shown to this browser; constant-time."""
    if not browser_secret or not token:
        return False
    return hmac.compare_digest(form_token(browser_secret).encode(), token.encode("utf-8", "surrogatepass"))
