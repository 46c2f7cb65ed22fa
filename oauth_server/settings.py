"""Server settings: explicit, validated once, frozen. The library never reads the environment."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import urlsplit

from oauth_server.scopes import is_scope_token

LOCAL_HOSTS = ("localhost", "127.0.0.1", "[::1]", "::1")
#: RFC 7518 §3 asymmetric JWS algorithms: an identity provider's assertion is never ``none`` or HMAC.
ASYMMETRIC_ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA")


def _check_url(name: str, url: str, *, allow_query: bool = False) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"{name} must be an absolute http(s) URL, got {url!r}")
    if parts.scheme == "http" and (parts.hostname or "") not in LOCAL_HOSTS:
        raise ValueError(f"{name} must use https (http is only allowed on localhost), got {url!r}")
    if parts.fragment or "#" in url:
        raise ValueError(f"{name} must not have a fragment")
    if parts.query and not allow_query:
        raise ValueError(f"{name} must not have a query")


@dataclass(frozen=True, slots=True)
class TrustedIdentityProvider:
    """An enterprise identity provider whose ID-JAGs this server accepts (``grants/jwt_bearer.py``).

    draft-ietf-oauth-identity-assertion-authz-grant: the IdP signs an Identity Assertion JWT
    Authorization Grant for one of our clients; we check it with the keys at ``jwks_uri``
    (fetched through the guarded fetcher with the operator-configured policy of
    ``resource.resource_fetch_policy``). ``allow_loopback`` lets that fetch reach this machine,
    over plain http too: development only.
    """

    issuer: str
    jwks_uri: str
    algorithms: tuple[str, ...] = ASYMMETRIC_ALGORITHMS
    allow_loopback: bool = False

    def __post_init__(self) -> None:
        # An issuer is an https URL without query or fragment (RFC 8414 §2), so "#" can join
        # it to a subject without ambiguity (``identity_providers.namespaced_subject``).
        _check_url("trusted identity provider issuer", self.issuer)
        _check_url("trusted identity provider jwks_uri", self.jwks_uri, allow_query=True)
        if not self.algorithms or set(self.algorithms) - set(ASYMMETRIC_ALGORITHMS):
            raise ValueError(f"identity provider algorithms must be among {', '.join(ASYMMETRIC_ALGORITHMS)}")


@dataclass(frozen=True, slots=True)
class OAuthServerSettings:
    """Everything that shapes the server's behaviour. Lifetimes are in seconds.

    Defaults follow mcp-oauth-server where it is right (access 1 h, refresh 14 days, client
    secret 90 days with 0 meaning never) and are stricter where the BCP asks (code 60 s,
    RFC 9700 §4.5 / OAuth 2.1 §4.1.2 recommend a short code lifetime).
    """

    issuer_url: str
    resource_server_url: str
    authorization_url: str
    scopes_supported: tuple[str, ...] = ()
    #: Granted when a client asks for no scope. None means: all of ``scopes_supported``.
    default_scopes: tuple[str, ...] | None = None
    access_token_lifetime: int = 3600
    refresh_token_lifetime: int = 1_209_600
    #: Absolute lifetime of a grant: refreshes stop after this however active (RFC 9700 §4.14.2).
    refresh_token_absolute_lifetime: int = 7_776_000
    authorization_code_lifetime: int = 60
    #: 0 means client secrets never expire (RFC 7591 §3.2.1 ``client_secret_expires_at: 0``).
    client_secret_lifetime: int = 7_776_000
    #: How long a user has to approve or deny after /authorize.
    pending_authorization_lifetime: int = 600
    dynamic_client_registration: bool = True
    #: Let dynamic registration (and RFC 7592 updates) grant ``client_credentials``. Off: anyone
    #: can register, so a registered machine identity would be anyone's; operators create such
    #: clients with ``oauth-server clients create --grant-type client_credentials``.
    dcr_client_credentials: bool = False
    #: Identity providers whose ID-JAGs (``urn:ietf:params:oauth:grant-type:jwt-bearer``) are
    #: accepted. Empty: the grant is off and not advertised.
    trusted_identity_providers: tuple[TrustedIdentityProvider, ...] = ()
    #: Issue refresh tokens (rotated on every use, OAuth 2.1 §4.3.1).
    issue_refresh_tokens: bool = True
    #: Seconds after a rotation during which the rotated refresh token may be presented again
    #: and yields a fresh pair instead of revoking the grant (``grants/refresh_token.py``
    #: explains the trade-off, RFC 9700 §4.14.2). 0: strict single use.
    refresh_token_reuse_grace: int = 0
    resource_name: str | None = None
    service_documentation_url: str | None = None
    max_redirect_uris: int = 20
    extra_resources: tuple[str, ...] = field(default=())
    #: ``"opaque"``: random strings looked up in the model. ``"jwt"``: RFC 9068 JWTs that a
    #: resource server in another process verifies with our JWKS (``/.well-known/jwks.json``).
    access_token_format: Literal["opaque", "jwt"] = "opaque"
    #: Algorithm of managed signing keys: RS256 (RFC 9068 §4 requires resource servers to
    #: support it, so every verifier does), ES256 or EdDSA.
    signing_algorithm: str = "RS256"
    #: The app's own signing keys (PEM or JSON JWK, private): the first signs, the others are
    #: only published. Empty: keys are managed in the model (``key_encryption_secret`` needed).
    signing_keys: tuple[str, ...] = ()
    #: Secret (≥ 32 bytes) that encrypts managed private keys before they are stored.
    key_encryption_secret: str | None = field(default=None, repr=False)
    #: Seconds a new managed key is published before it signs, and the JWKS's cache lifetime:
    #: a resource server that cached the JWKS already knows a key when it first sees it.
    signing_key_propagation: int = 300
    #: Seconds a process keeps the managed key set before reading it again (other processes'
    #: rotations reach it within this; an unknown ``kid`` rereads at once, at most this often).
    signing_key_cache_ttl: float = 60.0
    #: Accept client ID metadata documents: a ``client_id`` that is an https URL names the
    #: client's metadata, fetched and cached (``oauth_server.cimd``; MCP prefers this to DCR).
    client_id_metadata_documents: bool = True
    #: Development only: let metadata document URLs reach loopback addresses, over plain http
    #: too. Off in production, since the URL is chosen by a stranger and must never reach inside.
    cimd_allow_loopback: bool = False
    #: PEM file that replaces the default trust store for metadata document fetches.
    cimd_ca_bundle: str | None = None
    #: Size cap of a metadata document, enforced while it streams (draft §8.7: 5 KB).
    cimd_max_bytes: int = 5120
    #: Fetches per host name per minute, per process (so nobody can aim us at a third party).
    cimd_fetches_per_host_per_minute: int = 30
    #: Seconds a fetched document is kept at least, whatever its caching headers say.
    cimd_cache_min: int = 60
    #: Exact host names whose documents are accepted (None: any public host). An enterprise
    #: deployment runs with an allow-list; ``AuthorizationServer(cimd_policy=...)`` decides per URL.
    cimd_allowed_hosts: tuple[str, ...] | None = None
    #: Exact host names whose documents are refused.
    cimd_denied_hosts: tuple[str, ...] = ()
    #: Seconds a stored audit event is kept (``SQLAuditSink``); ``purge_expired`` deletes older ones.
    audit_retention: int = 7_776_000

    #: RFC 8628 device authorization grant: ``/device_authorization``, the verification page
    #: (``/device``) and ``urn:ietf:params:oauth:grant-type:device_code`` at the token endpoint.
    device_authorization_grant: bool = False
    #: Seconds a device code and its user code stay valid (RFC 8628 §3.2 ``expires_in``).
    device_code_lifetime: int = 600
    #: Seconds a device waits between polls (RFC 8628 §3.2 ``interval``; its default is 5).
    device_poll_interval: int = 5

    def __post_init__(self) -> None:
        _check_url("issuer_url", self.issuer_url)
        _check_url("resource_server_url", self.resource_server_url)
        _check_url("authorization_url", self.authorization_url, allow_query=True)
        for url in self.extra_resources:
            _check_url("extra_resources", url)
        for scope in self.scopes_supported:
            if not is_scope_token(scope):
                raise ValueError(f"invalid scope name {scope!r}")
        if self.default_scopes is not None:
            unknown = set(self.default_scopes) - set(self.scopes_supported)
            if unknown:
                raise ValueError(f"default_scopes not in scopes_supported: {sorted(unknown)}")
        for name in ("access_token_lifetime", "refresh_token_lifetime", "authorization_code_lifetime",
                     "pending_authorization_lifetime", "refresh_token_absolute_lifetime"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive")
        if not 0 <= self.refresh_token_reuse_grace <= 300:
            raise ValueError("refresh_token_reuse_grace must be between 0 and 300 seconds")
        if self.client_secret_lifetime < 0:
            raise ValueError("client_secret_lifetime must be >= 0 (0 means never expires)")
        if self.access_token_format not in ("opaque", "jwt"):
            raise ValueError("access_token_format must be 'opaque' or 'jwt'")
        if self.signing_algorithm not in ("RS256", "ES256", "EdDSA"):
            raise ValueError("signing_algorithm must be RS256, ES256 or EdDSA")
        if self.access_token_format == "jwt" and not self.signing_keys and not self.key_encryption_secret:
            raise ValueError("JWT access tokens need signing_keys or a key_encryption_secret for managed keys")
        if self.key_encryption_secret is not None and len(self.key_encryption_secret.encode()) < 32:
            raise ValueError("key_encryption_secret must be at least 32 bytes")
        if self.signing_key_propagation < 0 or self.signing_key_cache_ttl < 0:
            raise ValueError("signing_key_propagation and signing_key_cache_ttl must be >= 0")
        if not 0 < self.cimd_max_bytes <= 1_048_576:
            raise ValueError("cimd_max_bytes must be between 1 and 1048576")
        if self.cimd_fetches_per_host_per_minute < 1:
            raise ValueError("cimd_fetches_per_host_per_minute must be positive")
        issuers = [provider.issuer for provider in self.trusted_identity_providers]
        if len(set(issuers)) != len(issuers):
            raise ValueError("trusted_identity_providers names an issuer twice")
        if not 0 <= self.cimd_cache_min <= 86_400:
            raise ValueError("cimd_cache_min must be between 0 and 86400 seconds")
        if not 10 <= self.device_code_lifetime <= 3600:
            raise ValueError("device_code_lifetime must be between 10 and 3600 seconds")
        if not 1 <= self.device_poll_interval <= 60:
            raise ValueError("device_poll_interval must be between 1 and 60 seconds")
        if self.audit_retention <= 0:
            raise ValueError("audit_retention must be positive")

    @property
    def secure_cookies(self) -> bool:
        return self.issuer_url.startswith("https://")

    @property
    def resources(self) -> tuple[str, ...]:
        """Every resource indicator tokens may be issued for (RFC 8707)."""
        return (self.resource_server_url, *self.extra_resources)
