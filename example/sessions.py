"""The example's session cookie: a sign-in that lasts, so the password is asked once, not per consent.

The cookie holds ``base64url(username).expires_at.tag``, where ``tag`` is HMAC-SHA256 over the
rest under a key derived from ``SESSION_SECRET`` (stdlib only: the library has no itsdangerous).
Nothing is stored on the server: the signature proves the server issued it, and the expiry is
inside the signed part, so neither can be changed without the key; the tag is compared in
constant time. The cookie is HttpOnly (no script reads it) and SameSite=Lax (a cross-site POST
does not carry it: RFC 6265bis §5.4.7); served over https it is ``__Host-`` prefixed and Secure
(RFC 6265bis §4.1.3.2: only this host, Path=/, only over TLS). Over plain http on loopback (the
default ``http://localhost:8000``) the browser refuses a ``__Host-`` or Secure cookie, so the
name is unprefixed there.

Logging out removes the cookie from the browser. Being stateless, a copy of the value taken
before stays valid until it expires: keep ``SESSION_LIFETIME`` short, or keep sessions in a
server-side store (a real app's choice) to end them everywhere.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field

#: Longer than any cookie we issue (a username is at most a few hundred bytes).
MAX_COOKIE_LENGTH = 1024


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True)
class SessionCookies:
    """Issues and checks the signed session cookie.

    Args:
        secret: ``SESSION_SECRET``; None: a random one for this process (sessions then end at
            restart, and several worker processes do not accept each other's cookies).
        lifetime: seconds a sign-in lasts (``SESSION_LIFETIME``).
        secure: the example is served over https: ``__Host-`` name and the Secure attribute.
    """

    secret: str | None = field(default=None, repr=False)
    lifetime: int = 28_800
    secure: bool = False
    clock: Callable[[], float] = time.time
    _key: bytes = field(init=False, repr=False)

    def __post_init__(self) -> None:
        seed = self.secret.encode() if self.secret else secrets.token_bytes(32)
        # A key of its own, so the secret used elsewhere (or reused by mistake) signs nothing else.
        object.__setattr__(self, "_key", hashlib.sha256(b"oauth_server example session v1\x00" + seed).digest())

    @property
    def name(self) -> str:
        return "__Host-example_session" if self.secure else "example_session"

    def _tag(self, purpose: str, body: str) -> str:
        return _b64(hmac.new(self._key, f"{purpose}\x00{body}".encode(), hashlib.sha256).digest())

    def issue(self, username: str) -> str:
        """A new cookie value for ``username``, valid for ``lifetime`` seconds from now."""
        body = f"{_b64(username.encode())}.{int(self.clock()) + self.lifetime}"
        return f"{body}.{self._tag('session', body)}"

    def read(self, value: str | None) -> str | None:
        """The username of a genuine, unexpired cookie value, else None."""
        if not value or len(value) > MAX_COOKIE_LENGTH or value.count(".") != 2:
            return None
        name, expires, tag = value.split(".")
        if not hmac.compare_digest(self._tag("session", f"{name}.{expires}").encode(), tag.encode()):
            return None
        if not expires.isdigit() or int(expires) <= self.clock():
            return None
        try:
            return _unb64(name).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError, ValueError):
            return None

    def logout_token(self, value: str) -> str:
        """The anti-forgery token of the logout form: bound to this very session cookie."""
        return self._tag("logout", value)

    def logout_token_matches(self, value: str | None, token: str | None) -> bool:
        if not value or not token:
            return False
        return hmac.compare_digest(self.logout_token(value).encode(), token.encode("utf-8", "surrogatepass"))

    def set_cookie_header(self, username: str) -> str:
        """The ``Set-Cookie`` value that signs ``username`` in."""
        return self._header(self.issue(username), self.lifetime)

    def clear_cookie_header(self) -> str:
        """The ``Set-Cookie`` value that removes the cookie (RFC 6265bis §5.6: Max-Age=0)."""
        return self._header("", 0)

    def _header(self, value: str, max_age: int) -> str:
        header = f"{self.name}={value}; Max-Age={max_age}; Path=/; HttpOnly; SameSite=Lax"
        return header + "; Secure" if self.secure else header
