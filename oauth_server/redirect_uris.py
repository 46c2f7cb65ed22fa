"""Redirect URI rules: what may be registered, and how a requested URI matches a registered one.

Matching is exact string comparison (OAuth 2.1 §4.1.1, RFC 9700 §4.1.3) with one exception:
the port of an ``http`` loopback redirect may vary (RFC 8252 §7.3), because native apps bind an
ephemeral port. Parsing is done with anchored regular expressions rather than ``urlsplit`` so
that parser differentials (``http://127.0.0.1\\@evil``) cannot make two parsers disagree.
"""

from __future__ import annotations

import ipaddress
import re

from oauth_server.errors import InvalidRedirectUri

MAX_REDIRECT_URI_LENGTH = 2000

# Schemes that would run code, read local files or leave the browser's navigation model.
DANGEROUS_SCHEMES = frozenset(
    {"javascript", "data", "file", "vbscript", "about", "blob", "filesystem", "ftp", "ws", "wss",
     "mailto", "tel", "sms", "view-source", "chrome", "intent"}
)
# RFC 8252 §7.3, §8.3: the loopback hosts on which http redirects are allowed and the port may vary.
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "[::1]", "localhost"})

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


def _is_loopback_host(host: str) -> bool:
    """Whether a (parsed, lower-cased) host names this machine: ``localhost`` and its subdomains
    (RFC 6761 §6.3), or a loopback or unspecified IP literal. Used to keep ``web`` clients off it."""
    host = host.rstrip(".")
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(host[1:-1] if host.startswith("[") else host)
    except ValueError:
        return False
    return address.is_loopback or address.is_unspecified


def is_local(uri: str) -> bool:
    """Whether an http(s) redirect URI points at this machine, whatever its scheme or spelling."""
    parsed = _HTTP_URI.fullmatch(uri)
    return bool(parsed and _is_loopback_host(parsed.group("host").lower()))


def matches(requested: str, registered: str) -> bool:
    """True when ``requested`` may be used for a client that registered ``registered``.

    RFC 8252 §7.3: "The authorization server MUST allow any port to be specified at the time of
    the request for loopback IP redirect URIs, to accommodate clients that obtain an available
    ephemeral port from the operating system at the time of the request." §8.3: localhost
    redirects "function similarly to loopback IP redirects described in Section 7.3", though
    their use "is NOT RECOMMENDED". MCP clients register them (Claude Code's metadata document
    lists ``http://localhost/callback`` without a port; mcp-remote moves to the next free port
    without registering again), so the rule covers ``localhost`` too, for every client.

    Only the port may differ. The scheme must be ``http`` on both sides (the loopback rule is
    about plain-http listeners; an https URI names a certificate-bearing server and is exact).
    The host must be spelled exactly as registered: ``localhost`` registered does not admit
    ``127.0.0.1`` requested, nor the reverse, nor ``[::1]`` for ``127.0.0.1``: a client listens
    where its registered spelling resolves, and §8.3 warns that ``localhost`` may resolve
    elsewhere ("misconfigured host name resolution") or to another interface than the literal. Path and query
    are compared exactly. The anchored pattern leaves no room for userinfo or a backslash, so
    ``http://localhost:3334@evil.example/`` never parses as a loopback URI.
    """
    if requested == registered:
        return True
    req = _HTTP_URI.fullmatch(requested)
    reg = _HTTP_URI.fullmatch(registered)
    if not req or not reg:
        return False
    if req.group("scheme") != "http" or reg.group("scheme") != "http":
        return False
    if req.group("host") not in LOOPBACK_HOSTS or reg.group("host") != req.group("host"):
        return False
    return (req.group("path") or "") == (reg.group("path") or "") and req.group("query") == reg.group("query")


def find_match(requested: str, registered: tuple[str, ...]) -> str | None:
    """``requested`` itself when it matches one of ``registered``, else None.

    The requested URI, not the registered one, is returned: with a loopback port that varied,
    the authorization response must go to the port the client is listening on, and the code is
    bound to that URI, so the token request must repeat it (RFC 6749 §4.1.3: "ensure that
    their values are identical").
    """
    if len(requested) > MAX_REDIRECT_URI_LENGTH or "#" in requested:
        return None
    for candidate in registered:
        if matches(requested, candidate):
            return requested
    return None
