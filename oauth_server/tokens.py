"""Minting and hashing of every server-generated credential.

RFC 6749 §10.10 and RFC 9700 §4: credentials need at least 128 bits of entropy; we use 256.
They are stored as SHA-256 digests, so a leaked database yields nothing usable, and a lookup
by digest is an exact index match (no timing leak from a comparison of secrets).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

TOKEN_BYTES = 32


def new_token() -> str:
    """A fresh 256-bit credential, URL-safe (43 characters)."""
    return secrets.token_urlsafe(TOKEN_BYTES)


def new_id() -> str:
    """A random identifier that is not a credential (client ids, grant ids).

    Never starting with ``-``: an operator passes ids to the ``oauth-server`` command line, which
    would read ``-abc...`` as an option (1 id in 64 did; CI met one). Drawing again keeps 128 bits
    less a fraction of one bit, and the same 22-character URL-safe form.
    """
    while (value := secrets.token_urlsafe(16)).startswith("-"):
        pass
    return value


def digest(value: str) -> str:
    """Hex SHA-256 of a credential: what the model stores and looks up."""
    return hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()


def digest_matches(value: str, expected_digest: str) -> bool:
    """Constant-time check that ``value`` hashes to ``expected_digest``."""
    return hmac.compare_digest(digest(value), expected_digest)


def keyed_tag(key: str, message: str) -> str:
    """HMAC-SHA256 of ``message`` under ``key``, URL-safe: binds a form to a browser secret."""
    mac = hmac.new(key.encode("utf-8", "surrogatepass"), message.encode("utf-8", "surrogatepass"), "sha256")
    return mac.hexdigest()
