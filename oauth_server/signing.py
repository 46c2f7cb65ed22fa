"""Which key signs a JWT access token now, which keys verify, and how keys rotate.

Two sources. The app's own keys (``settings.signing_keys``): the first signs, all are
published; rotating them is a configuration change. Or managed keys, kept in the model so that
every process signs and publishes the same set, their private halves encrypted by
``keys.KeyCipher``; the first one is created on first use.

Rotation (``rotate``) follows the usual JWKS practice: the next key is published at once but
signs only ``signing_key_propagation`` seconds later, so a resource server that cached our JWKS
already has it; the keys it replaces retire at that moment and stay published until every token
they signed has expired (retirement + ``access_token_lifetime``).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from oauth_server import keys
from oauth_server.model.base import OAuthServerModel
from oauth_server.records import SigningKey
from oauth_server.settings import OAuthServerSettings

logger = logging.getLogger("oauth_server")


@dataclass(frozen=True, slots=True)
class LoadedKey:
    """A signing key ready to use: its private and public halves and its schedule."""

    kid: str
    algorithm: str
    private_key: keys.PrivateKey
    public_key: keys.PublicKey
    jwk: dict[str, Any]
    created_at: int
    activates_at: int
    retires_at: int | None
    expires_at: int | None

    def signs_at(self, now: int) -> bool:
        return self.activates_at <= now and (self.retires_at is None or now < self.retires_at)

    def published_at(self, now: int) -> bool:
        return self.expires_at is None or now < self.expires_at


def _static(source: str) -> LoadedKey:
    private = keys.load_private_key(source)
    jwk = keys.public_jwk(private)
    return LoadedKey(jwk["kid"], jwk["alg"], private, private.public_key(), jwk, 0, 0, None, None)


class SigningKeys:
    """The key set of one server process, reread from the model every ``signing_key_cache_ttl``."""

    def __init__(self, model: OAuthServerModel, settings: OAuthServerSettings,
                 clock: Callable[[], float] = time.time) -> None:
        self.model = model
        self.settings = settings
        self.clock = clock
        self._static = tuple(_static(source) for source in settings.signing_keys)
        secret = settings.key_encryption_secret
        self._cipher = keys.KeyCipher(secret) if secret and not self._static else None
        self._keys: tuple[LoadedKey, ...] = self._static
        self._decrypted: dict[str, LoadedKey] = {}
        self._loaded_at = float("-inf")
        self._lock = asyncio.Lock()

    @property
    def managed(self) -> bool:
        return not self._static

    async def _load(self, max_age: float | None = None) -> tuple[LoadedKey, ...]:
        """The key set, read from the model unless the copy here is younger than ``max_age``
        (default ``signing_key_cache_ttl``)."""
        if not self.managed:
            return self._keys
        limit = self.settings.signing_key_cache_ttl if max_age is None else max_age
        if time.monotonic() - self._loaded_at < limit:
            return self._keys
        async with self._lock:
            if time.monotonic() - self._loaded_at < limit:
                return self._keys  # another task reloaded while this one waited
            stored = await self.model.list_signing_keys()
            self._keys = tuple(self._decrypt(row) for row in stored)
            self._loaded_at = time.monotonic()
        return self._keys

    def _decrypt(self, row: SigningKey) -> LoadedKey:
        known = self._decrypted.get(row.kid)
        if known is None:
            private = keys.load_private_key(self._require_cipher().decrypt(row.private_key, row.kid))
            known = LoadedKey(row.kid, row.algorithm, private, private.public_key(), json.loads(row.public_jwk),
                              row.created_at, row.activates_at, row.retires_at, row.expires_at)
        elif (known.retires_at, known.expires_at) != (row.retires_at, row.expires_at):
            known = LoadedKey(known.kid, known.algorithm, known.private_key, known.public_key, known.jwk,
                              row.created_at, row.activates_at, row.retires_at, row.expires_at)
        self._decrypted[row.kid] = known
        return known

    def _require_cipher(self) -> keys.KeyCipher:
        if self._cipher is None:
            raise RuntimeError("managed signing keys need settings.key_encryption_secret")
        return self._cipher

    @staticmethod
    def _current(loaded: tuple[LoadedKey, ...], now: int) -> LoadedKey | None:
        """The newest key that signs at ``now`` (ties by kid, so every process picks the same)."""
        active = [key for key in loaded if key.signs_at(now)]
        return max(active, key=lambda key: (key.activates_at, key.kid)) if active else None

    async def signer(self) -> LoadedKey:
        """The key to sign with now; the first managed key is created on first use."""
        now = int(self.clock())
        current = self._current(await self._load(), now)
        if current is None and self.managed:
            current = self._current(await self._load(max_age=0), now)
            if current is None:
                await self._create(now, activates_at=now)
                current = self._current(await self._load(max_age=0), now)
        if current is None:
            raise RuntimeError("no signing key is active")
        return current

    async def _create(self, now: int, activates_at: int) -> SigningKey:
        cipher = self._require_cipher()
        private = keys.generate(self.settings.signing_algorithm)
        jwk = keys.public_jwk(private)
        row = SigningKey(kid=jwk["kid"], algorithm=jwk["alg"], public_jwk=json.dumps(jwk, separators=(",", ":")),
                         private_key=cipher.encrypt(keys.to_pem(private), jwk["kid"]),
                         created_at=now, activates_at=activates_at)
        await self.model.save_signing_key(row)
        logger.info("created signing key %s (%s), signing from %d", row.kid, row.algorithm, activates_at)
        return row

    async def rotate(self) -> str:
        """Publish a new key now, sign with it after the propagation delay; returns its kid."""
        if not self.managed:
            raise RuntimeError("the app's own signing_keys are rotated by changing the configuration")
        now = int(self.clock())
        activates_at = now + self.settings.signing_key_propagation
        replaced = [key for key in await self._load(max_age=0) if key.retires_at is None]
        row = await self._create(now, activates_at)
        for key in replaced:
            await self.model.retire_signing_key(key.kid, activates_at,
                                                activates_at + self.settings.access_token_lifetime)
        await self._load(max_age=0)
        return row.kid

    async def verification_key(self, kid: str) -> LoadedKey | None:
        """The published key ``kid``; an unknown one rereads the model (at most once a second)."""
        now = int(self.clock())
        for max_age in (None, 1.0):
            for key in await self._load(max_age):
                if key.kid == kid and key.published_at(now):
                    return key
            if not self.managed:
                break
        return None

    async def jwks(self) -> dict[str, Any]:
        """RFC 7517 §5: every published public key, the one that signs first."""
        now = int(self.clock())
        loaded = await self._load()
        current = self._current(loaded, now)
        published = sorted((key for key in loaded if key.published_at(now)),
                           key=lambda key: (key is not current, -key.activates_at, key.kid))
        return {"keys": [key.jwk for key in published]}
