"""The authorization request between /authorize and the user's decision. No web imports.

Anti-forgery: the browser that starts an authorization gets a random secret in a cookie, and
the pending request stores the secret's digest. The consent form carries
``HMAC(browser secret, request id)``. A confirmation is accepted only from the same browser
(cookie digest matches) for the same request (HMAC matches). An attacker who starts a request
of their own knows its id but not the victim's browser secret, so cannot make the victim's
browser approve it (RFC 6749 §10.12, RFC 9700 §4.4). Requests created through the SDK's
provider interface have no browser yet; the first browser to open the consent page claims them.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlencode, urlsplit, urlunsplit

from oauth_server import pkce, redirect_uris, tokens
from oauth_server import scopes as scope_strings
from oauth_server.errors import (
    AuthorizationFailed,
    InvalidClient,
    InvalidRequest,
    InvalidScope,
    OAuthError,
    UnauthorizedClient,
    UnsupportedResponseType,
)
from oauth_server.params import Params, single
from oauth_server.records import Client, PendingAuthorization
from oauth_server.resources import canonical_resource
from oauth_server.settings import OAuthServerSettings

MAX_STATE_LENGTH = 2000
# Parameters whose repetition is refused (RFC 6749 §3.1: "MUST NOT be included more than once").
SINGLE_VALUED = ("client_id", "redirect_uri", "response_type", "scope", "state", "code_challenge",
                 "code_challenge_method", "response_mode", "prompt")


def form_token(browser_secret: str, request_id: str) -> str:
    return tokens.keyed_tag(browser_secret, request_id)


def add_query(url: str, params: Mapping[str, str | None]) -> str:
    """Append parameters to a URL, keeping its existing query (RFC 6749 §3.1.2)."""
    parts = urlsplit(url)
    extra = urlencode({k: v for k, v in params.items() if v is not None})
    query = f"{parts.query}&{extra}" if parts.query and extra else (parts.query or extra)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))


def error_redirect(settings: OAuthServerSettings, redirect_uri: str, error: OAuthError, state: str | None) -> str:
    """RFC 6749 §4.1.2.1 error response, with ``iss`` (RFC 9207 §2)."""
    return add_query(redirect_uri, {
        "error": error.error,
        "error_description": error.description,
        "state": state,
        "iss": settings.issuer_url,
    })


def requested_scopes(settings: OAuthServerSettings, client: Client, scope: str | None) -> tuple[str, ...]:
    requested = scope_strings.parse(scope)
    if requested is None:
        default = settings.default_scopes if settings.default_scopes is not None else settings.scopes_supported
        if client.scope is not None:
            registered = set(client.scope.split())
            return tuple(s for s in default if s in registered)
        return tuple(default)
    scope_strings.require_subset(requested, settings.scopes_supported, "supported")
    if client.scope is not None:
        scope_strings.require_subset(requested, client.scope.split(), "registered for this client")
    return requested


@dataclass(frozen=True, slots=True)
class TrustedRedirect:
    """A known client and a redirect URI registered for it: from here on, errors may go there.

    ``redirect_uri`` is the URI as the client requested it, which differs from the registered
    one only in a loopback port (``redirect_uris.matches``): the response goes where the client
    listens, and the code is bound to that exact string for the token request.
    """

    client: Client
    redirect_uri: str
    #: OAuth 2.1 §4.1.3: the token request must repeat redirect_uri only when it was sent here.
    explicit: bool


def trusted_redirect(client: Client | None, params: Params) -> TrustedRedirect:
    """Client and redirect URI, or an error that must not be redirected anywhere."""
    try:
        client_id = single(params, "client_id")
        redirect_uri = single(params, "redirect_uri")
    except OAuthError as exc:
        raise AuthorizationFailed(exc) from None
    if not client_id:
        raise AuthorizationFailed(InvalidRequest("client_id is required"))
    if client is None:
        raise AuthorizationFailed(InvalidClient("unknown client_id"))
    if redirect_uri is None:
        if len(client.redirect_uris) != 1:
            raise AuthorizationFailed(InvalidRequest("redirect_uri is required"))
        return TrustedRedirect(client, client.redirect_uris[0], explicit=False)
    matched = redirect_uris.find_match(redirect_uri, client.redirect_uris)
    if matched is None:
        raise AuthorizationFailed(InvalidRequest("redirect_uri is not registered for this client"))
    return TrustedRedirect(client, matched, explicit=True)


@dataclass(frozen=True, slots=True)
class AuthorizationRequest:
    """A valid authorization request (OAuth 2.1 §4.1.1), before the user decides."""

    redirect: TrustedRedirect
    scopes: tuple[str, ...]
    code_challenge: str
    resource: str
    state: str | None


@dataclass(frozen=True, slots=True)
class AuthorizationStart:
    """Where to send the browser next, and the raw request id (only the digest is stored)."""

    consent_url: str
    request_id: str
    pending: PendingAuthorization


def validate_request(settings: OAuthServerSettings, redirect: TrustedRedirect, params: Params) -> AuthorizationRequest:
    """Check the rest of the request; failures from here on go back to the redirect URI."""
    state: str | None = None
    client = redirect.client
    try:
        state = single(params, "state")
        if state is not None and len(state) > MAX_STATE_LENGTH:
            state = None
            raise InvalidRequest("state is too long")
        for name in SINGLE_VALUED:
            single(params, name)
        response_type = single(params, "response_type")
        if response_type != "code":
            raise UnsupportedResponseType("response_type must be 'code'")
        if "authorization_code" not in client.grant_types:
            raise UnauthorizedClient("client is not registered for the authorization_code grant")
        challenge = pkce.check_challenge(single(params, "code_challenge"), single(params, "code_challenge_method"))
        scopes = requested_scopes(settings, client, single(params, "scope"))
        resource = canonical_resource(settings, params.get("resource") or [])
    except OAuthError as exc:
        raise AuthorizationFailed(exc, redirect.redirect_uri, state) from None
    if scope_strings.parse(single(params, "scope")) is not None and not scopes:
        raise AuthorizationFailed(InvalidScope("no scope requested"), redirect.redirect_uri, state)
    return AuthorizationRequest(redirect, scopes, challenge, resource, state)


def new_pending(
    settings: OAuthServerSettings, request: AuthorizationRequest, now: int, browser_secret: str | None
) -> AuthorizationStart:
    """The pending record of ``request`` and the consent URL that names it by a fresh id."""
    request_id = tokens.new_token()
    pending = PendingAuthorization(
        request_digest=tokens.digest(request_id),
        client_id=request.redirect.client.client_id,
        redirect_uri=request.redirect.redirect_uri,
        redirect_uri_provided_explicitly=request.redirect.explicit,
        scopes=request.scopes,
        code_challenge=request.code_challenge,
        resource=request.resource,
        state=request.state,
        expires_at=now + settings.pending_authorization_lifetime,
        browser_digest=tokens.digest(browser_secret) if browser_secret else None,
    )
    consent_url = add_query(settings.authorization_url, {"request_id": request_id})
    return AuthorizationStart(consent_url, request_id, pending)


def is_bound_to(pending: PendingAuthorization, request_id: str, browser_secret: str | None, token: str | None) -> bool:
    """Same browser (cookie digest) and same request (HMAC in the form), compared in constant time."""
    if not browser_secret or not token or pending.browser_digest is None:
        return False
    same_browser = tokens.digest_matches(browser_secret, pending.browser_digest)
    same_request = hmac.compare_digest(form_token(browser_secret, request_id), token)
    return same_browser and same_request
