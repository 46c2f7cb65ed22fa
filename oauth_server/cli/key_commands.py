"""``keys list|rotate`` and ``token``: the keys that sign JWT access tokens, and a token for development.

The private keys are stored encrypted with the server's key encryption secret, so rotating and
minting need that secret (the same one the server runs with); listing shows public facts only.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import click

from oauth_server import jwt_access, tokens
from oauth_server.cli.common import (
    ConfigError,
    Failed,
    database_options,
    emit,
    iso,
    issuer_option,
    secret_option,
    settings,
    split_commas,
    table,
    with_model,
)
from oauth_server.keys import SigningKeyError
from oauth_server.model.base import OAuthServerModel
from oauth_server.records import AccessToken, SigningKey
from oauth_server.settings import OAuthServerSettings
from oauth_server.signing import LoadedKey, SigningKeys

_DEV_REFUSAL = ("refusing to mint a token without --dev: a token minted outside any grant bypasses the "
                "user's consent and no revocation reaches it; it is for development only")


def _signs_now(stored: list[SigningKey], now: int) -> str | None:
    """The kid that signs at ``now``: SigningKeys' rule, the newest active key, ties by kid."""
    active = [key for key in stored if key.activates_at <= now and (key.retires_at is None or now < key.retires_at)]
    return max(active, key=lambda key: (key.activates_at, key.kid)).kid if active else None


@click.group("keys")
def keys_group() -> None:
    """Signing keys of JWT access tokens (RFC 9068), published in the JWKS."""


@keys_group.command("list")
@database_options
def list_command(database_url: str | None, as_json: bool) -> None:
    """Every stored key with its schedule, and which one signs now."""
    stored = with_model(database_url, lambda model: model.list_signing_keys())
    now = int(time.time())
    signer = _signs_now(stored, now)
    rows = [{"kid": key.kid, "algorithm": key.algorithm, "created_at": iso(key.created_at),
             "activates_at": iso(key.activates_at), "retires_at": iso(key.retires_at),
             "expires_at": iso(key.expires_at), "signing": key.kid == signer,
             "published": key.expires_at is None or now < key.expires_at} for key in stored]
    emit(rows, as_json, lambda: table([{**row, "signing": "yes" if row["signing"] else ""} for row in rows],
                                      ["kid", "algorithm", "created_at", "activates_at", "retires_at",
                                       "expires_at", "signing"]))


def _managed_settings(issuer: str, secret: str | None, scopes: tuple[str, ...] = (),
                      **extra: Any) -> OAuthServerSettings:
    if not secret:
        raise ConfigError("managed signing keys need --key-encryption-secret or KEY_ENCRYPTION_SECRET")
    return settings(issuer, scopes, access_token_format="jwt", key_encryption_secret=secret, **extra)


@keys_group.command("rotate")
@database_options
@issuer_option
@secret_option
@click.option("--propagation", default=300, show_default=True, type=click.IntRange(min=0),
              help="Seconds the new key is published before it signs (resource servers fetch it first).")
def rotate_command(database_url: str | None, as_json: bool, issuer: str, key_encryption_secret: str | None,
                   propagation: int) -> None:
    """Publish a new signing key; the keys it replaces stay published until their tokens expire.

    The very first key signs at once: no resource server can hold an older key set to miss it.
    """
    _managed_settings(issuer, key_encryption_secret)  # a bad secret or issuer exits 2 before the database

    async def rotate(model: OAuthServerModel) -> str:
        from oauth_server.server import AuthorizationServer

        delay = propagation if await model.list_signing_keys() else 0
        server = AuthorizationServer(model, _managed_settings(issuer, key_encryption_secret,
                                                              signing_key_propagation=delay))
        try:
            return await server.rotate_signing_keys()
        except SigningKeyError as exc:
            raise Failed(str(exc)) from None

    kid = with_model(database_url, rotate)
    emit({"kid": kid}, as_json, lambda: click.echo(f"new signing key {kid}"))


@click.command("token")
@database_options
@issuer_option
@secret_option
@click.option("--dev", is_flag=True, help="Required: acknowledges the token bypasses consent.")
@click.option("--subject", required=True, help="sub: the user the token speaks for.")
@click.option("--scopes", multiple=True, callback=split_commas, help="Scopes (repeatable or comma list).")
@click.option("--client-id", default="oauth-server-cli", show_default=True, help="client_id claim.")
@click.option("--resource", help="aud: the protected resource (default: ISSUER/mcp).")
@click.option("--lifetime", default=3600, show_default=True, type=click.IntRange(min=1), help="Seconds.")
@click.option("--signing-key-file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Sign with this PEM private key instead of the managed keys (no database needed).")
def token_command(database_url: str | None, as_json: bool, issuer: str, key_encryption_secret: str | None,
                  dev: bool, subject: str, scopes: tuple[str, ...], client_id: str, resource: str | None,
                  lifetime: int, signing_key_file: Path | None) -> None:
    """Mint a signed JWT access token (RFC 9068) for development; refuses without --dev.

    The token belongs to no grant and is stored nowhere, so this server's own bearer check
    (which looks every token up in the database) rejects it. It is meant for a resource
    server that verifies JWTs by our JWKS alone (resource-server mode). With the managed keys
    and none stored yet, the first key is created, as the server would on first use.
    """
    if not dev:
        raise ConfigError(_DEV_REFUSAL)
    audience = resource or f"{issuer.rstrip('/')}/mcp"
    extra: dict[str, Any] = {"resource_server_url": audience, "access_token_lifetime": lifetime}
    if signing_key_file is not None:
        config = settings(issuer, scopes, access_token_format="jwt",
                          signing_keys=(signing_key_file.read_text(),), **extra)
        key = _static_signer(config)
    else:
        config = _managed_settings(issuer, key_encryption_secret, scopes, **extra)
        key = with_model(database_url, lambda model: _async_signer(SigningKeys(model, config)))
    now = int(time.time())
    record = AccessToken(token_digest="", grant_id="", client_id=client_id, subject=subject, scopes=scopes,
                         resource=audience, expires_at=now + lifetime)
    token = jwt_access.encode(key, config, record, tokens.new_id(), now)
    emit({"access_token": token, "token_type": "Bearer", "expires_in": lifetime, "expires_at": iso(now + lifetime),
          "kid": key.kid, "sub": subject, "scope": " ".join(scopes), "aud": audience, "client_id": client_id},
         as_json, lambda: click.echo(token))


def _static_signer(config: OAuthServerSettings) -> LoadedKey:
    """The key of --signing-key-file: SigningKeys over a memory model that is never read."""
    import asyncio

    from oauth_server.model.memory import MemoryOAuthServerModel

    try:
        return asyncio.run(SigningKeys(MemoryOAuthServerModel(), config).signer())
    except (SigningKeyError, ValueError) as exc:
        raise ConfigError(f"unusable signing key: {exc}") from None


async def _async_signer(signing: SigningKeys) -> LoadedKey:
    try:
        return await signing.signer()
    except SigningKeyError as exc:
        raise Failed(str(exc)) from None
