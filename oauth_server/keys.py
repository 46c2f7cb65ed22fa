"""Signing keys for JWT access tokens (RFC 9068) and their public form, the JWK Set (RFC 7517).

Pure functions and small classes: generating and loading keys, their public JWKs with an RFC 7638
thumbprint as ``kid``, and ``KeyCipher``, which encrypts private keys before the model stores
them (design.md: private keys are never stored in clear). Which key signs when, and rotation,
are ``signing.py``'s business.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from collections.abc import Mapping
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey
PublicKey = rsa.RSAPublicKey | ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey

#: RFC 9068 §4: RS256 MUST be supported; ES256 and EdDSA (Ed25519) are smaller and faster.
ALGORITHMS = ("RS256", "ES256", "EdDSA")
RSA_BITS = 2048  # RFC 7518 §3.3: at least 2048 bits


class SigningKeyError(ValueError):
    """A key that cannot be used: wrong type for its algorithm, unreadable, or undecryptable."""


def generate(algorithm: str) -> PrivateKey:
    """A new private key for ``algorithm`` (one of ``ALGORITHMS``)."""
    if algorithm == "RS256":
        return rsa.generate_private_key(public_exponent=65537, key_size=RSA_BITS)
    if algorithm == "ES256":
        return ec.generate_private_key(ec.SECP256R1())
    if algorithm == "EdDSA":
        return ed25519.Ed25519PrivateKey.generate()
    raise SigningKeyError(f"unsupported signing algorithm {algorithm!r}; use one of {', '.join(ALGORITHMS)}")


def algorithm_of(key: PrivateKey) -> str:
    """The JWS algorithm a private key signs with (P-256 only for EC: RFC 7518 §3.4)."""
    if isinstance(key, rsa.RSAPrivateKey):
        if key.key_size < RSA_BITS:
            raise SigningKeyError(f"RSA keys must have at least {RSA_BITS} bits")
        return "RS256"
    if isinstance(key, ec.EllipticCurvePrivateKey):
        if not isinstance(key.curve, ec.SECP256R1):
            raise SigningKeyError("EC signing keys must be on P-256 (ES256)")
        return "ES256"
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return "EdDSA"
    raise SigningKeyError("signing keys must be RSA, EC P-256 or Ed25519")


def to_pem(key: PrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def load_private_key(source: str | bytes | Mapping[str, Any]) -> PrivateKey:
    """An app-provided key: a PEM (PKCS#8 or traditional, unencrypted) or a private JWK."""
    try:
        if isinstance(source, Mapping):
            return _from_jwk(dict(source))
        data = source.encode() if isinstance(source, str) else source
        if data.lstrip().startswith(b"{"):
            return _from_jwk(json.loads(data))
        key = serialization.load_pem_private_key(data, password=None)
    except SigningKeyError:
        raise
    except Exception as exc:  # cryptography and PyJWT raise several types for unreadable input
        raise SigningKeyError(f"the signing key cannot be read ({type(exc).__name__})") from None
    if not isinstance(key, (rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey, ed25519.Ed25519PrivateKey)):
        raise SigningKeyError("signing keys must be RSA, EC P-256 or Ed25519")
    algorithm_of(key)
    return key


def _from_jwk(jwk: dict[str, Any]) -> PrivateKey:
    kty = jwk.get("kty")
    key: object
    if kty == "RSA":
        key = RSAAlgorithm.from_jwk(jwk)
    elif kty == "EC":
        key = ECAlgorithm.from_jwk(jwk)
    elif kty == "OKP":
        key = OKPAlgorithm.from_jwk(jwk)
    else:
        raise SigningKeyError("a JWK signing key must have kty RSA, EC or OKP")
    if not isinstance(key, (rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey, ed25519.Ed25519PrivateKey)):
        raise SigningKeyError("the JWK is a public key; a signing key must be private")
    return key


def public_jwk(key: PrivateKey) -> dict[str, Any]:
    """The public JWK (RFC 7517 §4) with ``kid`` = its RFC 7638 thumbprint, ``use`` and ``alg``."""
    algorithm = algorithm_of(key)
    public = key.public_key()
    if isinstance(public, rsa.RSAPublicKey):
        jwk = RSAAlgorithm.to_jwk(public, as_dict=True)
    elif isinstance(public, ec.EllipticCurvePublicKey):
        jwk = ECAlgorithm.to_jwk(public, as_dict=True)
    else:
        jwk = OKPAlgorithm.to_jwk(public, as_dict=True)
    jwk = {k: v for k, v in jwk.items() if k not in ("key_ops", "kid", "alg", "use")}
    jwk.update(kid=thumbprint(jwk), use="sig", alg=algorithm)
    return jwk


def thumbprint(jwk: Mapping[str, Any]) -> str:
    """RFC 7638 §3: SHA-256 over the required members in lexicographic order, base64url."""
    required = {"RSA": ("e", "kty", "n"), "EC": ("crv", "kty", "x", "y"), "OKP": ("crv", "kty", "x")}
    members = {name: jwk[name] for name in required[str(jwk["kty"])]}
    canonical = json.dumps(members, separators=(",", ":"), sort_keys=True).encode()
    return _b64(hashlib.sha256(canonical).digest())


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class KeyCipher:
    """Encrypts private keys for storage: AES-256-GCM (``cryptography``'s AESGCM).

    The 256-bit key is derived with HKDF-SHA256 from the secret the app provides, so any
    string of enough entropy works. Each ciphertext has a fresh 96-bit nonce and the key's
    ``kid`` as associated data: a stored key moved to another row does not decrypt. A database
    leak without the secret yields no private key; the secret lives in the app's configuration.
    """

    VERSION = "v1"

    def __init__(self, secret: str | bytes) -> None:
        raw = secret.encode() if isinstance(secret, str) else secret
        if len(raw) < 32:
            raise ValueError("the key encryption secret must be at least 32 bytes (use secrets.token_urlsafe(32))")
        derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
                       info=b"oauth_server signing key encryption").derive(raw)
        self._aead = AESGCM(derived)

    def encrypt(self, plaintext: bytes, kid: str) -> str:
        nonce = os.urandom(12)
        return f"{self.VERSION}.{_b64(nonce + self._aead.encrypt(nonce, plaintext, kid.encode()))}"

    def decrypt(self, stored: str, kid: str) -> bytes:
        version, _, blob = stored.partition(".")
        if version != self.VERSION:
            raise SigningKeyError("stored signing key has an unknown format")
        try:
            data = _unb64(blob)
            return self._aead.decrypt(data[:12], data[12:], kid.encode())
        except Exception:  # InvalidTag: wrong secret, tampered row, or a row moved to another kid
            raise SigningKeyError("stored signing key does not decrypt with this key encryption secret") from None
