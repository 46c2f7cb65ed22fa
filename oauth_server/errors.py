"""OAuth error classes: one per RFC error code, each carrying its HTTP status.

The description is safe to show to the client. Details that would help an attacker (another
client's id, a stored redirect URI) belong in the log, never in ``description``.
"""

from __future__ import annotations

from typing import ClassVar


class OAuthError(Exception):
    """Base of every error the server answers with (RFC 6749 §5.2, §4.1.2.1)."""

    error: ClassVar[str] = "server_error"
    status_code: ClassVar[int] = 400

    def __init__(self, description: str | None = None) -> None:
        super().__init__(description or self.error)
        self.description = description

    def to_dict(self) -> dict[str, str]:
        body = {"error": self.error}
        if self.description:
            body["error_description"] = self.description
        return body


class InvalidRequest(OAuthError):
    """RFC 6749 §5.2: missing, repeated or malformed parameter."""

    error = "invalid_request"


class InvalidClient(OAuthError):
    """RFC 6749 §5.2: client authentication failed (401)."""

    error = "invalid_client"
    status_code = 401


class InvalidGrant(OAuthError):
    """RFC 6749 §5.2: the code or refresh token is invalid, expired, revoked or bound elsewhere."""

    error = "invalid_grant"


class UnauthorizedClient(OAuthError):
    """RFC 6749 §5.2: the client may not use this grant or response type."""

    error = "unauthorized_client"


class UnsupportedGrantType(OAuthError):
    """RFC 6749 §5.2."""

    error = "unsupported_grant_type"


class UnsupportedResponseType(OAuthError):
    """RFC 6749 §4.1.2.1."""

    error = "unsupported_response_type"


class InvalidScope(OAuthError):
    """RFC 6749 §5.2: unknown scope, or wider than allowed."""

    error = "invalid_scope"


class InvalidTarget(OAuthError):
    """RFC 8707 §2: the resource indicator is invalid or not served here."""

    error = "invalid_target"


class AccessDenied(OAuthError):
    """RFC 6749 §4.1.2.1: the resource owner denied the request."""

    error = "access_denied"
    status_code = 403


class AuthorizationPending(OAuthError):
    """RFC 8628 §3.5: the user has not decided yet; the device polls again after the interval."""

    error = "authorization_pending"


class SlowDown(OAuthError):
    """RFC 8628 §3.5: polled sooner than the interval; it grows by 5 seconds from now on."""

    error = "slow_down"


class ExpiredToken(OAuthError):
    """RFC 8628 §3.5: the device code has expired; the device may start a new authorization."""

    error = "expired_token"


class DeviceAccessDenied(OAuthError):
    """RFC 8628 §3.5: the user denied the device authorization (a token endpoint error: 400)."""

    error = "access_denied"


class InvalidRedirectUri(OAuthError):
    """RFC 7591 §3.2.2."""

    error = "invalid_redirect_uri"


class InvalidClientMetadata(OAuthError):
    """RFC 7591 §3.2.2."""

    error = "invalid_client_metadata"


class InvalidToken(OAuthError):
    """RFC 6750 §3.1: the access token is missing, expired, revoked or for another resource."""

    error = "invalid_token"
    status_code = 401


class InsufficientScope(OAuthError):
    """RFC 6750 §3.1: the token lacks a scope the resource requires."""

    error = "insufficient_scope"
    status_code = 403


class PayloadTooLarge(OAuthError):
    """RFC 9110 §15.5.14: the body is over the endpoint's limit (64 KiB)."""

    error = "invalid_request"
    status_code = 413


class ServerError(OAuthError):
    """RFC 6749 §4.1.2.1: an unexpected condition; details only in the log."""

    error = "server_error"
    status_code = 500


class TemporarilyUnavailable(OAuthError):
    """RFC 6749 §4.1.2.1: storage unreachable or overloaded; the client may retry."""

    error = "temporarily_unavailable"
    status_code = 503


class StorageUnavailable(Exception):
    """Raised by a model when its database cannot be reached; answered as 503."""


class ConsentForbidden(OAuthError):
    """The consent form failed its anti-forgery check (not bound to this browser or request)."""

    error = "invalid_request"
    status_code = 403


class AuthorizationFailed(Exception):
    """An /authorize or consent failure, with where (if anywhere) it may be sent.

    ``redirect_uri`` is None when the client or redirect URI could not be trusted: then the
    error is shown to the user and never redirected (RFC 6749 §4.1.2.1, RFC 9700 §4.11).
    """

    def __init__(self, error: OAuthError, redirect_uri: str | None = None, state: str | None = None) -> None:
        super().__init__(error.description or error.error)
        self.error = error
        self.redirect_uri = redirect_uri
        self.state = state
