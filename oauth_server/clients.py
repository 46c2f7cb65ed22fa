"""Client registration (RFC 7591) and client authentication (RFC 6749 §2.3, OAuth 2.1 §2.4)."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from oauth_server import client_assertion, redirect_uris, tokens
from oauth_server.errors import InvalidClient, InvalidClientMetadata, InvalidRedirectUri
from oauth_server.grants.device_code import GRANT_TYPE as DEVICE_CODE
from oauth_server.model.base import OAuthServerModel
from oauth_server.records import Client
from oauth_server.settings import OAuthServerSettings

AUTH_METHODS = ("none", "client_secret_basic", "client_secret_post", "private_key_jwt")
SECRET_METHODS = ("client_secret_basic", "client_secret_post")
#: What a registration without ``grant_types`` gets (RFC 7591 §2 defaults to authorization_code;
#: MCP clients expect refresh too).
GRANT_TYPES = ("authorization_code", "refresh_token")
#: RFC 6749 §4.4: a client acting on its own behalf (the MCP OAuth client credentials extension).
CLIENT_CREDENTIALS = "client_credentials"
#: RFC 7523 §2.1: a JWT authorization grant; here the ID-JAG of an enterprise identity provider.
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
#: Grants that need a confidential client: a public client could be anyone who read its id.
CONFIDENTIAL_GRANTS = (CLIENT_CREDENTIALS, JWT_BEARER)
#: Grants that obtain tokens on their own; refresh_token only continues one of them.
PRIMARY_GRANTS = ("authorization_code", *CONFIDENTIAL_GRANTS)
# RFC 7591 §3.2.1: fields the server owns; a client cannot choose them.
SERVER_OWNED = frozenset(
    {"client_id", "client_secret", "client_id_issued_at", "client_secret_expires_at",
     "registration_access_token", "registration_client_uri"}
)
MAX_TEXT = 256
MAX_URI = 2000
MAX_CONTACTS = 10
_HTTP_URL = re.compile(r"https?://[^\s#\\@]+", re.IGNORECASE)


def _text(metadata: Mapping[str, Any], name: str, limit: int = MAX_TEXT) -> str | None:
    value = metadata.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > limit or "\x00" in value:
        raise InvalidClientMetadata(f"{name} must be a string of at most {limit} characters")
    return value


def _url(metadata: Mapping[str, Any], name: str) -> str | None:
    value = _text(metadata, name, MAX_URI)
    if value is not None and not _HTTP_URL.fullmatch(value):
        raise InvalidClientMetadata(f"{name} must be an http(s) URL")
    return value


def _string_list(metadata: Mapping[str, Any], name: str, default: tuple[str, ...]) -> tuple[str, ...]:
    value = metadata.get(name)
    if value is None:
        return default
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InvalidClientMetadata(f"{name} must be a list of strings")
    return tuple(dict.fromkeys(value))


def _redirect_uris(metadata: Mapping[str, Any], settings: OAuthServerSettings) -> tuple[str, ...]:
    value = metadata.get("redirect_uris")
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise InvalidRedirectUri("redirect_uris must be a non-empty list of strings")
    if len(value) > settings.max_redirect_uris:
        raise InvalidRedirectUri(f"at most {settings.max_redirect_uris} redirect_uris are allowed")
    return tuple(redirect_uris.validate_for_registration(uri) for uri in dict.fromkeys(value))


APPLICATION_TYPES = ("native", "web")


def application_type_for(declared: str | None, uris: tuple[str, ...]) -> str:
    """The client's ``application_type``: the declared one if the redirect URIs fit it, else
    ``InvalidRedirectUri``; when none was declared, the one the redirect URIs imply.

    OpenID Connect Registration §2 defines "native" and "web": "Web Clients using the OAuth
    Implicit Grant Type MUST only register URLs using the https scheme as redirect_uris; they
    MUST NOT use localhost as the hostname. Native Clients MUST only register redirect_uris
    using custom URI schemes or loopback URLs using the http scheme". We have no implicit grant,
    so we hold every "web" client to the web rule, as MCP describes web clients as "remote
    browser-based applications served from a non-local host". Native clients may also use
    claimed ``https`` URLs (RFC 8252 §7.2), so a native client may register any redirect we accept.
    MCP 2026-07-28 (SEP-837): clients "MUST specify an appropriate application_type";
    "Native applications (desktop applications, mobile apps, CLI tools, and locally-hosted web
    applications accessed via localhost) SHOULD use application_type: native".

    Omitted: OIDC defaults to "web", which the MCP text warns "can conflict with native-style
    redirect URIs"; clients older than the field (mcp-remote, most DCR clients) omit it and
    redirect to loopback. So it is inferred: "web" only when every redirect is https on a host
    that is not this machine; otherwise "native", mixed sets included, because "native" is the
    one type that admits every URI of such a set (loopback plus a claimed https URL is a native
    app's usual pair, RFC 8252 §7.2-§7.3), while "web" would contradict the loopback ones.
    RFC 7591 §3.2.1 lets the server "substitute them with suitable values" and requires it to
    "return all registered metadata", so the inferred value is stored and returned.
    """
    web_compatible = all(uri.startswith("https://") and not redirect_uris.is_local(uri) for uri in uris)
    if declared is None:
        return "web" if web_compatible else "native"
    if declared not in APPLICATION_TYPES:
        raise InvalidClientMetadata("application_type must be 'web' or 'native'")
    if declared == "web" and not web_compatible:
        raise InvalidRedirectUri(
            "a 'web' client must use https redirect URIs on a host other than localhost; register as 'native'"
        )
    return declared


def build_client(
    metadata: Mapping[str, Any], settings: OAuthServerSettings, now: int, client_id: str | None = None,
    *, allow_client_credentials: bool = False, allow_jwt_bearer: bool | None = None,
) -> tuple[Client, str | None]:
    """Validate registration metadata; return the client to store and its secret (if any).

    Server-owned fields in ``metadata`` are ignored (RFC 7591 §3.2.1). ``allow_client_credentials``
    is the caller's say over machine identities: the operator CLI passes True, dynamic
    registration ``settings.dcr_client_credentials``, client metadata documents never.
    ``allow_jwt_bearer`` (None: whether identity providers are trusted) likewise for ID-JAGs.
    """
    method = metadata.get("token_endpoint_auth_method") or "client_secret_basic"  # RFC 7591 §2 default
    if method not in AUTH_METHODS:
        raise InvalidClientMetadata(
            f"token_endpoint_auth_method must be one of {', '.join(AUTH_METHODS)}"
        )
    if allow_jwt_bearer is None:
        allow_jwt_bearer = bool(settings.trusted_identity_providers)
    grant_types = _grant_types(metadata, method, allow_client_credentials, allow_jwt_bearer,
                               settings.device_authorization_grant)
    redirects = "authorization_code" in grant_types
    # RFC 7591 §2: redirect_uris are for redirect-based flows; a machine client has none.
    uris = _redirect_uris(metadata, settings) if redirects or metadata.get("redirect_uris") else ()
    response_types = _string_list(metadata, "response_types", ("code",))
    if response_types not in (("code",), ()) or (redirects and response_types != ("code",)):
        raise InvalidClientMetadata("response_types must be ['code'] (RFC 7591 §2.1)")
    if not redirects:
        # RFC 7591 §2.1: "code" goes with authorization_code only. SDK client models default
        # response_types to ["code"] whatever the grant, so a machine client sending it is not
        # refused: §3.2.1 lets the server substitute a suitable value, and returns it.
        response_types = ()
    scope = _text(metadata, "scope", 1000)
    if scope is not None:
        unknown = set(scope.split()) - set(settings.scopes_supported)
        if unknown:
            raise InvalidClientMetadata(f"unknown scope: {' '.join(sorted(unknown))}")
        scope = " ".join(dict.fromkeys(scope.split())) or None
    application_type = application_type_for(_text(metadata, "application_type"), uris)
    contacts = _string_list(metadata, "contacts", ())
    if len(contacts) > MAX_CONTACTS or any(len(c) > MAX_TEXT for c in contacts):
        raise InvalidClientMetadata("too many or too long contacts")

    jwks, jwks_uri, signing_alg = _client_keys(metadata, method)
    secret: str | None = None
    secret_digest: str | None = None
    secret_expires_at: int | None = None
    if method in SECRET_METHODS:
        secret = tokens.new_token()
        secret_digest = tokens.digest(secret)
        lifetime = settings.client_secret_lifetime
        secret_expires_at = now + lifetime if lifetime else 0
    client = Client(
        client_id=client_id or tokens.new_id(),
        redirect_uris=uris,
        token_endpoint_auth_method=method,
        grant_types=grant_types,
        response_types=response_types,
        client_id_issued_at=now,
        client_secret_digest=secret_digest,
        client_secret_expires_at=secret_expires_at,
        scope=scope,
        client_name=_text(metadata, "client_name"),
        client_uri=_url(metadata, "client_uri"),
        logo_uri=_url(metadata, "logo_uri"),
        tos_uri=_url(metadata, "tos_uri"),
        policy_uri=_url(metadata, "policy_uri"),
        contacts=contacts,
        software_id=_text(metadata, "software_id"),
        software_version=_text(metadata, "software_version"),
        application_type=application_type,
        jwks=jwks,
        jwks_uri=jwks_uri,
        token_endpoint_auth_signing_alg=signing_alg,
    )
    return client, secret


def _client_keys(metadata: Mapping[str, Any], method: str) -> tuple[str | None, str | None, str | None]:
    """``jwks`` XOR ``jwks_uri`` (RFC 7591 §2: "MUST NOT both be present"), required by and kept
    only for ``private_key_jwt`` (RFC 7523 §2.2), and its optional signing ``alg`` (OpenID
    Connect Dynamic Client Registration 1.0 §2 ``token_endpoint_auth_signing_alg``)."""
    if method != "private_key_jwt":
        return None, None, None
    has_jwks, has_uri = metadata.get("jwks") is not None, metadata.get("jwks_uri") is not None
    if has_jwks == has_uri:
        raise InvalidClientMetadata("private_key_jwt needs exactly one of jwks and jwks_uri")
    jwks = client_assertion.validate_jwks(metadata["jwks"]) if has_jwks else None
    jwks_uri = _url(metadata, "jwks_uri")
    if jwks_uri is not None and not jwks_uri.lower().startswith("https://"):
        raise InvalidClientMetadata("jwks_uri must be an https URL")
    alg = _text(metadata, "token_endpoint_auth_signing_alg")
    if alg is not None and alg not in client_assertion.SIGNING_ALGORITHMS:
        raise InvalidClientMetadata(
            f"token_endpoint_auth_signing_alg must be one of {', '.join(client_assertion.SIGNING_ALGORITHMS)}")
    return jwks, jwks_uri, alg


def _grant_types(metadata: Mapping[str, Any], method: str, allow_client_credentials: bool,
                 allow_jwt_bearer: bool, allow_device_code: bool) -> tuple[str, ...]:
    """RFC 7591 §2 ``grant_types``: ones this server offers this registrant, at least one that
    obtains tokens, and the confidential-only grants only for a client that authenticates.

    RFC 8628: a device client may be public (mcp-remote ``--device-code`` registers with
    ``none``): the user approves every one of its requests on the verification page (§5.4)."""
    grant_types = _string_list(metadata, "grant_types", GRANT_TYPES)
    offered = {*GRANT_TYPES, *((CLIENT_CREDENTIALS,) if allow_client_credentials else ()),
               *((JWT_BEARER,) if allow_jwt_bearer else ()), *((DEVICE_CODE,) if allow_device_code else ())}
    unknown = set(grant_types) - offered
    if unknown:
        raise InvalidClientMetadata(f"unsupported grant_types: {', '.join(sorted(unknown))}")
    primary = (*PRIMARY_GRANTS, *((DEVICE_CODE,) if allow_device_code else ()))
    if not set(grant_types) & set(primary):
        raise InvalidClientMetadata(f"grant_types must include one of {', '.join(primary)}")
    if method == "none" and set(grant_types) & set(CONFIDENTIAL_GRANTS):
        raise InvalidClientMetadata("client_credentials and jwt-bearer need a confidential client "
                                    "(token_endpoint_auth_method other than none)")
    return grant_types


def client_information(client: Client, secret: str | None = None) -> dict[str, Any]:
    """RFC 7591 §3.2.1 client information response (the secret only when just issued)."""
    body: dict[str, Any] = {
        "client_id": client.client_id,
        "client_id_issued_at": client.client_id_issued_at,
        "redirect_uris": list(client.redirect_uris),
        "token_endpoint_auth_method": client.token_endpoint_auth_method,
        "grant_types": list(client.grant_types),
        "response_types": list(client.response_types),
    }
    if secret is not None:
        body["client_secret"] = secret
        body["client_secret_expires_at"] = client.client_secret_expires_at or 0
    optional = {
        "scope": client.scope, "client_name": client.client_name, "client_uri": client.client_uri,
        "logo_uri": client.logo_uri, "tos_uri": client.tos_uri, "policy_uri": client.policy_uri,
        "software_id": client.software_id, "software_version": client.software_version,
        "application_type": client.application_type, "jwks_uri": client.jwks_uri,
        "token_endpoint_auth_signing_alg": client.token_endpoint_auth_signing_alg,
    }
    body.update({k: v for k, v in optional.items() if v is not None})
    if client.jwks is not None:
        body["jwks"] = json.loads(client.jwks)
    if client.contacts:
        body["contacts"] = list(client.contacts)
    return body


@dataclass(frozen=True, slots=True)
class ClientCredentials:
    """What a request presented to authenticate a client, and how (one method per request).

    ``assertion`` is a ``private_key_jwt`` client assertion (RFC 7523 §2.2); ``endpoint_url``
    is the URL of the endpoint that received it, one audience it may name (RFC 7523 §3 item 3).
    """

    client_id: str
    method: str
    secret: str | None = None
    assertion: str | None = None
    endpoint_url: str | None = None


async def authenticate(client: Client | None, credentials: ClientCredentials, now: int, *,
                       model: OAuthServerModel, keys: client_assertion.ClientKeys,
                       issuer: str) -> Client:
    """Check the credentials against the stored client. Every failure is ``invalid_client``."""
    if client is None:
        raise InvalidClient("unknown client")
    if credentials.method != client.token_endpoint_auth_method:
        raise InvalidClient(
            f"client is registered for {client.token_endpoint_auth_method}, not {credentials.method}"
        )
    if client.is_public:
        return client
    if client.token_endpoint_auth_method == "private_key_jwt":
        if credentials.assertion is None:
            raise InvalidClient("client assertion required")
        issuer = issuer.rstrip("/")
        audiences = tuple(dict.fromkeys(
            a for a in (f"{issuer}/token", issuer, f"{issuer}/", credentials.endpoint_url) if a))
        await client_assertion.verify(model, keys, client, credentials.assertion, audiences, now)
        return client
    if client.client_secret_digest is None or credentials.secret is None:
        raise InvalidClient("client secret required")
    # Server-issued secrets are 256-bit random values: a SHA-256 digest compared in constant time.
    if not tokens.digest_matches(credentials.secret, client.client_secret_digest):
        raise InvalidClient("invalid client secret")
    expires_at = client.client_secret_expires_at
    if expires_at and expires_at <= now:
        # RFC 7591 §3.2.1: past client_secret_expires_at the secret is dead; the way back is a
        # new registration (or an RFC 7592 update of this one), so the client is told which.
        raise InvalidClient(
            "client secret has expired (client_secret_expires_at); register the client again "
            "to obtain a new secret"
        )
    return client
