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

from oauth_server import client_assertion
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
    authorization_header: str | None, form_client_id: str | None, form_client_secret: str | None,
    form_assertion_type: str | None = None, form_assertion: str | None = None, endpoint_url: str | None = None,
) -> ClientCredentials:
    """Decide which single method the request used (OAuth 2.1 §2.4: one method per request)."""
    if form_assertion_type is not None or form_assertion is not None:
        return _assertion_credentials(authorization_header, form_client_id, form_client_secret,
                                      form_assertion_type, form_assertion, endpoint_url)
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


def _assertion_credentials(
    authorization_header: str | None, form_client_id: str | None, form_client_secret: str | None,
    assertion_type: str | None, assertion: str | None, endpoint_url: str | None,
) -> ClientCredentials:
    """RFC 7523 §2.2: ``client_assertion_type`` + ``client_assertion``; ``client_id`` is optional
    and, if sent, must be the assertion's subject. With Basic or a secret too, it is two methods."""
    if form_client_secret is not None or (authorization_header or "").lower().startswith("basic"):
        raise InvalidRequest("use one client authentication method per request")
    if not assertion_type or not assertion:
        raise InvalidRequest("client_assertion_type and client_assertion must be sent together")
    if assertion_type != client_assertion.ASSERTION_TYPE:
        raise InvalidClient("unsupported client_assertion_type")
    client_id = client_assertion.unverified_client_id(assertion)
    if form_client_id is not None and form_client_id != client_id:
        raise InvalidClient("client_id does not match the client assertion")
    return ClientCredentials(client_id, "private_key_jwt", assertion=assertion, endpoint_url=endpoint_url)


async def authenticate(server: AuthorizationServer, request: Request, form: Params) -> Client:
    """The client a /token, /revoke or /introspect request authenticates as, or ``InvalidClient``.

    The endpoint's own URL (from the issuer, never from the Host header) is one audience a
    client assertion may name (RFC 7523 §3 item 3).
    """
    endpoint = request.url.path.rsplit("/", 1)[-1]
    credentials = credentials_from_request(
        request.headers.get("authorization"), single(form, "client_id"), single(form, "client_secret"),
        single(form, "client_assertion_type"), single(form, "client_assertion"),
        server.settings.issuer_url.rstrip("/") + "/" + endpoint,
    )
    return await server.authenticate_client(credentials)


def client_error(request: Request, exc: InvalidClient) -> JSONResponse:
    """RFC 6749 §5.2: a failed Basic attempt answers 401 with WWW-Authenticate."""
    headers = {}
    if (request.headers.get("authorization") or "").lower().startswith("basic"):
        headers["WWW-Authenticate"] = 'Basic realm="oauth"'
    return error_response(exc, headers)
