"""The records the model stores. Frozen: a record is a fact, a change is a new record.

Times are integer seconds since the epoch (UTC). Every credential field is a SHA-256 digest
(``*_digest``); the raw value exists only in the response that hands it out.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Client:
    """A client: registered (RFC 7591 §2 metadata plus server-owned fields) or known by its
    client ID metadata document (its ``client_id`` is the document's URL; the record caches it)."""

    client_id: str
    redirect_uris: tuple[str, ...]
    token_endpoint_auth_method: str = "none"
    grant_types: tuple[str, ...] = ("authorization_code", "refresh_token")
    response_types: tuple[str, ...] = ("code",)
    client_id_issued_at: int = 0
    client_secret_digest: str | None = None
    #: RFC 7591 §3.2.1: 0 means the secret never expires.
    client_secret_expires_at: int | None = None
    scope: str | None = None
    client_name: str | None = None
    client_uri: str | None = None
    logo_uri: str | None = None
    tos_uri: str | None = None
    policy_uri: str | None = None
    contacts: tuple[str, ...] = ()
    software_id: str | None = None
    software_version: str | None = None
    application_type: str | None = None
    #: RFC 7591 §2 ``jwks``: the client's public keys as JSON text (``private_key_jwt``, RFC 7523).
    jwks: str | None = None
    #: RFC 7591 §2 ``jwks_uri``: where the client publishes them instead.
    jwks_uri: str | None = None
    #: RFC 7592 §3: digest of the registration access token that manages this client.
    registration_access_token_digest: str | None = None
    #: A client ID metadata document's client (``client_id`` is the document's HTTPS URL): when
    #: the cached document must be fetched again. None for a registered client.
    metadata_document_expires_at: int | None = None
    #: The JWS ``alg`` its ``private_key_jwt`` assertions must use (OpenID Connect Dynamic Client
    #: Registration 1.0 §2; RFC 7591 §2 defers such extensions to their own specifications).
    token_endpoint_auth_signing_alg: str | None = None

    @property
    def is_public(self) -> bool:
        return self.token_endpoint_auth_method == "none"


@dataclass(frozen=True, slots=True)
class PendingAuthorization:
    """A validated /authorize request waiting for the user's decision."""

    request_digest: str
    client_id: str
    redirect_uri: str
    redirect_uri_provided_explicitly: bool
    scopes: tuple[str, ...]
    code_challenge: str
    resource: str
    state: str | None
    expires_at: int
    #: Digest of the browser-binding cookie; None until a browser claims the request.
    browser_digest: str | None = None


@dataclass(frozen=True, slots=True)
class Grant:
    """One user's authorization of one client: every code and token of it carries its ``grant_id``.

    Revocation marks the grant (``revoked_at``) and every issuance checks the mark in the same
    atomic step as it stores, so "revoked" wins whatever the order of concurrent requests
    (RFC 9700 §4.5 replayed codes, §4.14.2 reused refresh tokens). Kept until ``expires_at``,
    after which no credential of the grant can be live.
    """

    grant_id: str
    client_id: str
    subject: str
    scopes: tuple[str, ...]
    resource: str
    created_at: int
    expires_at: int
    revoked_at: int | None = None
    #: When tokens were last issued in the grant (its code redeemed, or a refresh): the "last
    #: used" of a connected-apps page. Set by ``record_grant_use``, never on a bearer check.
    last_used_at: int | None = None


@dataclass(frozen=True, slots=True)
class AuthorizationCode:
    """An issued code. Consumed codes stay (``consumed_at`` set) until purged, so replay is seen."""

    code_digest: str
    grant_id: str
    client_id: str
    subject: str
    redirect_uri: str
    redirect_uri_provided_explicitly: bool
    scopes: tuple[str, ...]
    code_challenge: str
    resource: str
    expires_at: int
    consumed_at: int | None = None


@dataclass(frozen=True, slots=True)
class AccessToken:
    """An issued opaque access token."""

    token_digest: str
    grant_id: str
    client_id: str
    subject: str
    scopes: tuple[str, ...]
    resource: str
    expires_at: int


@dataclass(frozen=True, slots=True)
class RefreshToken:
    """An issued refresh token. Rotated ones stay (``rotated_at`` set) so reuse is detected."""

    token_digest: str
    grant_id: str
    client_id: str
    subject: str
    scopes: tuple[str, ...]
    resource: str
    #: Idle expiry: each rotation moves it forward, never past ``grant_expires_at``.
    expires_at: int
    #: Absolute expiry of the grant (RFC 9700 §4.14.2); rotation never extends it.
    grant_expires_at: int
    rotated_at: int | None = None
    #: The scopes of the original grant; a refresh may narrow, never widen past these.
    granted_scopes: tuple[str, ...] = field(default=())


@dataclass(frozen=True, slots=True)
class SigningKey:
    """A key that signs JWT access tokens (RFC 9068), as the model stores it.

    Published in the JWKS from ``created_at``; signs from ``activates_at`` (later than creation
    when it replaces a key, so resource servers have it before any token needs it) until
    ``retires_at``; stays published until ``expires_at`` (its last token's expiry), then goes.
    ``private_key`` is the PKCS#8 PEM encrypted by ``keys.KeyCipher``: never the key in clear.
    """

    kid: str
    algorithm: str
    #: The public JWK (RFC 7517 §4) as JSON text.
    public_jwk: str
    private_key: str
    created_at: int
    activates_at: int
    retires_at: int | None = None
    expires_at: int | None = None


#: ``DeviceAuthorization.status`` values: set once, from pending, by the user's decision.
DEVICE_PENDING, DEVICE_APPROVED, DEVICE_DENIED = "pending", "approved", "denied"


@dataclass(frozen=True, slots=True)
class DeviceAuthorization:
    """An RFC 8628 device authorization: from /device_authorization until the device's tokens.

    Both codes are stored as digests. Pending until the signed-in user approves or denies on the
    verification page; an approval stores the user's ``subject``, the granted ``scopes`` (until
    then: the requested ones) and the new grant's ``grant_id``. ``consumed_at`` is set once, when
    the device redeems it; the record stays until ``expires_at`` so that a replay is recognised.
    """

    device_code_digest: str
    user_code_digest: str
    client_id: str
    scopes: tuple[str, ...]
    resource: str
    expires_at: int
    #: RFC 8628 §3.5: seconds the device must wait between polls; grows by 5 with each slow_down.
    poll_interval: int
    last_polled_at: int | None = None
    status: str = DEVICE_PENDING
    subject: str | None = None
    grant_id: str | None = None
    consumed_at: int | None = None
