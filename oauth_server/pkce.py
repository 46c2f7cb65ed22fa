"""PKCE (RFC 7636) with S256 only, as OAuth 2.1 §4.1.1 and the MCP authorization spec require."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re

from oauth_server.errors import InvalidRequest

# RFC 7636 §4.1: code_verifier = 43*128unreserved; §4.2: the S256 challenge is 43 base64url chars.
_VERIFIER = re.compile(r"[A-Za-z0-9\-._~]{43,128}")
_CHALLENGE = re.compile(r"[A-Za-z0-9\-_]{43}")


def check_challenge(code_challenge: str | None, method: str | None) -> str:
    """Validate an authorization request's PKCE parameters and return the challenge.

    A missing method means ``plain`` (RFC 7636 §4.3), which OAuth 2.1 forbids here.
    """
    if not code_challenge:
        raise InvalidRequest("code_challenge is required (PKCE, OAuth 2.1 §4.1.1)")
    if method is None or method == "":
        raise InvalidRequest("code_challenge_method is required and must be S256")
    if method != "S256":
        raise InvalidRequest("code_challenge_method must be S256")
    if not _CHALLENGE.fullmatch(code_challenge):
        raise InvalidRequest("code_challenge must be 43 base64url characters (RFC 7636 §4.2)")
    return code_challenge


def verifier_is_well_formed(code_verifier: str) -> bool:
    return _VERIFIER.fullmatch(code_verifier) is not None


def s256(code_verifier: str) -> str:
    raw = hashlib.sha256(code_verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def verify(code_verifier: str, code_challenge: str) -> bool:
    """RFC 7636 §4.6: BASE64URL(SHA256(verifier)) == challenge, compared in constant time."""
    if not verifier_is_well_formed(code_verifier):
        return False
    return hmac.compare_digest(s256(code_verifier), code_challenge)
