"""Redirect URI rules: what may be registered, and how a requested URI matches a registered one.

Matching is exact string comparison (OAuth 2.1 §4.1.1, RFC 9700 §4.1.3) with one exception:
the port of a loopback IP literal may vary (RFC 8252 §7.3), because native apps bind an
ephemeral port. Parsing is done with anchored regular expressions rather than ``urlsplit`` so
that parser differentials (``http://127.0.0.1\\@evil``) cannot make two parsers disagree.
"""

from __future__ import annotations

import re

from oauth_server.errors import InvalidRedirectUri

MAX_REDIRECT_URI_LENGTH = 2000

# Schemes that would run code, read local files or leave the browser's navigation model.
DANGEROUS_SCHEMES = frozenset(
    {"javascript", "data", "file", "vbscript", "about", "blob", "filesystem", "ftp", "ws", "wss",
     "mailto", "tel", "sms", "view-source", "chrome", "intent"}
)
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "[::1]", "localhost"})
LOOPBACK_IP_LITERALS = frozenset({"127.0.0.1", "[::1]"})

_SCHEME = re.compile(r"([a-z][a-z0-9+.\-]*):", re.IGNORECASE)
# scheme://host[:port][/path][?query] with no userinfo, no fragment, no backslash, no whitespace.
_HTTP_URI = re.compile(
    r"(?P<scheme>https?)://(?P<host>\[[0-9a-f:.]+\]|[a-z0-9\-._~%!$&'()+,;=]+)"
    r"(?::(?P<port>[0-9]{1,5}))?(?P<path>/[^?#\s\\]*)?(?:\?(?P<query>[^#\s\\]*))?",
    re.IGNORECASE,
)
_PRIVATE_USE = re.compile(r"[a-z][a-z0-9+.\-]*:[^#\s\\]+", re.IGNORECASE)


def _control_or_space(uri: str) -> bool:
    return any(ord(ch) < 0x21 or ord(ch) == 0x7F for ch in uri)


def validate_for_registration(uri: str) -> str:
    """Raise ``InvalidRedirectUri`` unless ``uri`` is safe to register; return it unchanged.

    Allowed: ``https`` on any host, ``http`` on a loopback host (RFC 8252 §7.3, OAuth 2.1
    §2.3.1), and private-use schemes for native apps (RFC 8252 §7.1). Refused: fragments
    (RFC 6749 §3.1.2), userinfo, wildcards, backslashes, control characters, dangerous schemes.
    """
    if not isinstance(uri, str) or not uri:
        raise InvalidRedirectUri("redirect_uris must be non-empty strings")
    if len(uri) > MAX_REDIRECT_URI_LENGTH:
        raise InvalidRedirectUri("redirect URI is too long")
    if "#" in uri:
        raise InvalidRedirectUri("redirect URI must not contain a fragment (RFC 6749 §3.1.2)")
    if _control_or_space(uri) or "\\" in uri:
        raise InvalidRedirectUri("redirect URI contains forbidden characters")
    scheme_match = _SCHEME.match(uri)
    if not scheme_match:
        raise InvalidRedirectUri("redirect URI must be an absolute URI")
    scheme = scheme_match.group(1).lower()
    if scheme in DANGEROUS_SCHEMES:
        raise InvalidRedirectUri(f"redirect URI scheme '{scheme}' is not allowed")
    if scheme in ("http", "https"):
        if scheme_match.group(1) != scheme:
            raise InvalidRedirectUri("redirect URI scheme must be lower case")
        parsed = _HTTP_URI.fullmatch(uri)
        if not parsed:
            raise InvalidRedirectUri("redirect URI is not a valid http(s) URI (no userinfo allowed)")
        host = parsed.group("host").lower()
        if "*" in host or "%" in host:
            raise InvalidRedirectUri("redirect URI host must be a plain host name")
        port = parsed.group("port")
        if port is not None and not 0 < int(port) < 65536:
            raise InvalidRedirectUri("redirect URI port is out of range")
        if scheme == "http" and host not in LOOPBACK_HOSTS:
            raise InvalidRedirectUri("http redirect URIs are only allowed on a loopback host; use https")
        return uri
    # RFC 8252 §7.1: private-use URI scheme of a native app (e.g. com.example.app:/cb, cursor://...).
    if not _PRIVATE_USE.fullmatch(uri):
        raise InvalidRedirectUri("redirect URI is not a valid URI")
    return uri


def is_loopback(uri: str) -> bool:
    parsed = _HTTP_URI.fullmatch(uri)
    return bool(parsed and parsed.group("scheme") == "http" and parsed.group("host").lower() in LOOPBACK_HOSTS)


def matches(requested: str, registered: str) -> bool:
    """True when ``requested`` may be used for a client that registered ``registered``."""
    if requested == registered:
        return True
    # RFC 8252 §7.3: for a loopback IP literal the port is ephemeral; everything else is exact.
    req = _HTTP_URI.fullmatch(requested)
    reg = _HTTP_URI.fullmatch(registered)
    if not req or not reg:
        return False
    if req.group("scheme") != "http" or reg.group("scheme") != "http":
        return False
    if req.group("host") not in LOOPBACK_IP_LITERALS or reg.group("host") != req.group("host"):
        return False
    return (req.group("path") or "") == (reg.group("path") or "") and req.group("query") == reg.group("query")


def find_match(requested: str, registered: tuple[str, ...]) -> str | None:
    """The registered URI that ``requested`` matches, or None."""
    if len(requested) > MAX_REDIRECT_URI_LENGTH or "#" in requested:
        return None
    for candidate in registered:
        if matches(requested, candidate):
            return requested
    return None
