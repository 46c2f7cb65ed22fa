"""The audit events: one frozen dataclass per security-relevant fact.

Every event carries ``time`` (the server's injected clock, epoch seconds), and, where the fact
has them, the ``client_id``, ``subject`` and ``grant_id`` it concerns; the rest is the kind's
own. No event holds a credential (RFC 6749 §10.3, RFC 9700 §4: a log or audit table is read by
more people than the token table): tokens and codes appear only as a ``*_ref``, the first
``REF_LENGTH`` hex characters of the SHA-256 digest the model stores. A ref finds the row, it
cannot be presented anywhere. Secrets, assertions and registration tokens never appear at all.

``AuditEvent`` is the union a hook receives; ``match event: case TokensIssued(grant_type=g)``
is checked by mypy. ``TokensRefreshed`` is a ``TokensIssued`` (a refresh issues tokens), so a
``case TokensRefreshed()`` must come before a ``case TokensIssued()`` to be reached.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from oauth_server import tokens

#: Hex characters of a credential's digest shown in events: 64 bits, enough to find the row.
REF_LENGTH = 16

Severity = Literal["info", "warning"]


def ref(credential: str) -> str:
    """The reference of a raw credential: its digest's prefix (never the credential)."""
    return tokens.digest(credential)[:REF_LENGTH]


def digest_ref(digest: str) -> str:
    """The reference of a credential already digested (what the model stores)."""
    return digest[:REF_LENGTH]


@dataclass(frozen=True, slots=True, kw_only=True)
class Event:
    """What every event has. ``kind`` names it in JSON and in the SQL sink's ``kind`` column."""

    kind: ClassVar[str] = "event"
    #: Attacks detected and refusals are warnings; the ordinary life of a grant is info.
    severity: ClassVar[Severity] = "info"

    time: int
    client_id: str | None = None
    subject: str | None = None
    grant_id: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """``{"event": kind, "time": ..., ...}``: plain JSON values (tuples become lists)."""
        body: dict[str, Any] = {"event": self.kind}
        for name in _field_names(type(self)):
            value = getattr(self, name)
            body[name] = list(value) if isinstance(value, tuple) else value
        return body


@dataclass(frozen=True, slots=True, kw_only=True)
class ClientRegistered(Event):
    """RFC 7591 §3.1: a client registered itself (or was created by the SDK's registration)."""

    kind: ClassVar[str] = "client_registered"
    client_name: str | None
    token_endpoint_auth_method: str
    grant_types: tuple[str, ...]
    redirect_uris: tuple[str, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class ClientUpdated(Event):
    """RFC 7592 §2.2: a client replaced its metadata (a new secret is not shown, only that it changed)."""

    kind: ClassVar[str] = "client_updated"
    client_name: str | None
    token_endpoint_auth_method: str
    grant_types: tuple[str, ...]
    redirect_uris: tuple[str, ...]
    secret_rotated: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class ClientDeleted(Event):
    """RFC 7592 §2.3: a client deleted itself; every grant of it was revoked with it."""

    kind: ClassVar[str] = "client_deleted"


@dataclass(frozen=True, slots=True, kw_only=True)
class ConsentApproved(Event):
    """The user approved: a new grant with the scopes they granted (RFC 6749 §4.1.2)."""

    kind: ClassVar[str] = "consent_approved"
    scopes: tuple[str, ...]
    requested_scopes: tuple[str, ...]
    resource: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ConsentDenied(Event):
    """The user denied: ``access_denied`` went back to the client (RFC 6749 §4.1.2.1)."""

    kind: ClassVar[str] = "consent_denied"
    requested_scopes: tuple[str, ...]
    resource: str


@dataclass(frozen=True, slots=True, kw_only=True)
class CodeIssued(Event):
    """An authorization code of the grant went to the client's redirect URI."""

    kind: ClassVar[str] = "code_issued"
    code_ref: str
    expires_at: int


@dataclass(frozen=True, slots=True, kw_only=True)
class TokensIssued(Event):
    """The token endpoint issued an access token (and perhaps a refresh token) for ``grant_type``."""

    kind: ClassVar[str] = "tokens_issued"
    grant_type: str
    scopes: tuple[str, ...]
    resource: str
    access_token_ref: str
    refresh_token_ref: str | None
    expires_at: int


@dataclass(frozen=True, slots=True, kw_only=True)
class TokensRefreshed(TokensIssued):
    """A refresh token was rotated into a new pair (OAuth 2.1 §4.3.1); ``grant_type`` is refresh_token."""

    kind: ClassVar[str] = "tokens_refreshed"


@dataclass(frozen=True, slots=True, kw_only=True)
class RefreshReuseDetected(Event):
    """RFC 9700 §4.14.2: a rotated refresh token came back; its grant was revoked."""

    kind: ClassVar[str] = "refresh_reuse_detected"
    severity: ClassVar[Severity] = "warning"
    refresh_token_ref: str
    rotated_at: int | None


@dataclass(frozen=True, slots=True, kw_only=True)
class CodeReplayDetected(Event):
    """RFC 9700 §4.5 / RFC 6749 §4.1.2: a used code came back; its grant was revoked."""

    kind: ClassVar[str] = "code_replay_detected"
    severity: ClassVar[Severity] = "warning"
    code_ref: str
    presented_by: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class TokenRevoked(Event):
    """RFC 7009 §2.1: a client revoked one of its tokens, and with it the whole grant."""

    kind: ClassVar[str] = "token_revoked"
    token_type: Literal["access_token", "refresh_token"]
    token_ref: str


@dataclass(frozen=True, slots=True, kw_only=True)
class GrantRevokedByUser(Event):
    """The user ended one of their own grants on the connected-apps page (or through
    ``revoke_user_grant``): every code and token of it is gone. ``client_id`` is None: the
    page knows the grant, not which client it belonged to, and no extra read is made for it."""

    kind: ClassVar[str] = "grant_revoked_by_user"


@dataclass(frozen=True, slots=True, kw_only=True)
class TokenIntrospected(Event):
    """RFC 7662 §2.1: ``client_id`` asked about a token; ``active`` is what it was told.

    ``subject`` and ``grant_id`` are the token's when it was active for this caller; ``token_client_id``
    is the client the token belongs to.
    """

    kind: ClassVar[str] = "token_introspected"
    active: bool
    token_type: Literal["access_token", "refresh_token"] | None
    token_client_id: str | None
    token_ref: str


@dataclass(frozen=True, slots=True, kw_only=True)
class CIMDFetchRefused(Event):
    """A client ID metadata document URL was refused or unusable (``client_id`` is the URL)."""

    kind: ClassVar[str] = "cimd_fetch_refused"
    severity: ClassVar[Severity] = "warning"
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class RateLimitHit(Event):
    """A rate limit refused a request (429). ``key`` is the caller's IP, or its client_id."""

    kind: ClassVar[str] = "rate_limit_hit"
    severity: ClassVar[Severity] = "warning"
    limit: str
    key: str
    retry_after: int


AuditEvent = (
    ClientRegistered | ClientUpdated | ClientDeleted | ConsentApproved | ConsentDenied | CodeIssued
    | TokensIssued | TokensRefreshed | RefreshReuseDetected | CodeReplayDetected | TokenRevoked
    | GrantRevokedByUser | TokenIntrospected | CIMDFetchRefused | RateLimitHit
)
"""Every event a hook may receive."""

#: Every event class, by its ``kind``.
EVENT_KINDS: dict[str, type[Event]] = {cls.kind: cls for cls in (
    ClientRegistered, ClientUpdated, ClientDeleted, ConsentApproved, ConsentDenied, CodeIssued, TokensIssued,
    TokensRefreshed, RefreshReuseDetected, CodeReplayDetected, TokenRevoked, GrantRevokedByUser, TokenIntrospected,
    CIMDFetchRefused, RateLimitHit)}

#: The fields every event has (columns of their own in the SQL sink).
COMMON_FIELDS = ("time", "client_id", "subject", "grant_id")

_FIELDS: dict[type[Event], tuple[str, ...]] = {}


def _field_names(kind: type[Event]) -> tuple[str, ...]:
    names = _FIELDS.get(kind)
    if names is None:
        names = _FIELDS[kind] = tuple(f.name for f in dataclasses.fields(kind))
    return names
