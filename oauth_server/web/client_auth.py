"""Client authentication as HTTP carries it (RFC 6749 §2.3.1, OAuth 2.1 §2.4), for /token and /revoke.

HTTP parsing lives here; the rule (which method a client registered, secret comparison, expiry)
is ``oauth_server.clients.authenticate``, reached through ``AuthorizationServer.authenticate_client``.
"""

from __future__ import annotations

import base64
import binascii
from urllib.parse import unquote_plus

from starlette.requests import Request
from starlette.responses import JSONResponse

from oauth_server.clients import ClientCredentials
from oauth_server.errors import InvalidClient, InvalidRequest
from oauth_server.params import Params, single
from oauth_server.records import Client
from oauth_server.server import AuthorizationServer
from oauth_server.web.errors import error_response


def parse_basic_authorization(header: str) -> tuple[str, str]:
    """RFC 6749 §2.3.1: base64 of ``urlencode(id):urlencode(secret)``. Raises InvalidClient.

    The scheme name is case-insensitive (RFC 9110 §11.1).
    """
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic" or not encoded.strip():
        raise InvalidClient("malformed Basic authorization header")
    encoded = encoded.strip()
    try:
        raw = base64.b64decode(encoded, validate=True)
        decoded = raw.decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise InvalidClient("malformed Basic authorization header") from None
    # RFC 7617 §2 / RFC 4648 §4: exactly the padded base64 of the pair; Python's decoder also
    # takes surplus padding, so one spelling per credential is enforced by re-encoding.
    if base64.b64encode(raw).decode("ascii") != encoded:
        raise InvalidClient("malformed Basic authorization header")
    raw_id, colon, raw_secret = decoded.partition(":")
    if not colon:
        raise InvalidClient("malformed Basic authorization header")
    client_id, secret = unquote_plus(raw_id), unquote_plus(raw_secret)
    if not client_id:
        raise InvalidClient("malformed Basic authorization header")
    return client_id, secret


def credentials_from_request(
    authorization_header: str | None, form_client_id: str | None, form_client_secret: str | None
) -> ClientCredentials:
    """Decide which single method the request used (OAuth 2.1 §2.4: one method per request)."""
    if authorization_header is not None and authorization_header.lower().startswith("basic"):
        if form_client_secret is not None:
            raise InvalidRequest("use one client authentication method per request")
        client_id, secret = parse_basic_authorization(authorization_header)
        if form_client_id is not None and form_client_id != client_id:
            raise InvalidClient("client_id does not match the Authorization header")
        return ClientCredentials(client_id, "client_secret_basic", secret)
    if not form_client_id:
        raise InvalidClient("client authentication is required (client_id missing)")
    if form_client_secret is not None:
        return ClientCredentials(form_client_id, "client_secret_post", form_client_secret)
    return ClientCredentials(form_client_id, "none")


async def authenticate(server: AuthorizationServer, request: Request, form: Params) -> Client:
    """The client a /token or /revoke request authenticates as, or ``InvalidClient``."""
    credentials = credentials_from_request(
        request.headers.get("authorization"), single(form, "client_id"), single(form, "client_secret")
    )
    return await server.authenticate_client(credentials)


def client_error(request: Request, exc: InvalidClient) -> JSONResponse:
    """RFC 6749 §5.2: a failed Basic attempt answers 401 with WWW-Authenticate."""
    headers = {}
    if (request.headers.get("authorization") or "").lower().startswith("basic"):
        headers["WWW-Authenticate"] = 'Basic realm="oauth"'
    return error_response(exc, headers)
