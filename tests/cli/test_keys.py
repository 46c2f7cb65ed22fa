"""``keys list|rotate`` and ``token``: managed keys need the secret, and minting needs --dev."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import jwt
import pytest

from oauth_server import keys
from oauth_server.model.sqlalchemy import SQLAlchemyOAuthServerModel
from oauth_server.records import SigningKey
from tests.cli.conftest import invoke

SECRET = "s" * 40


def _keys(url: str) -> list[dict[str, object]]:
    result = invoke("keys", "list", "--database-url", url, "--json")
    assert result.exit_code == 0, result.output
    rows: list[dict[str, object]] = json.loads(result.stdout)
    return rows


def test_rotate_and_list(url: str) -> None:
    assert _keys(url) == []
    first = invoke("keys", "rotate", "--database-url", url, "--json", env={"KEY_ENCRYPTION_SECRET": SECRET})
    assert first.exit_code == 0, first.output
    kid = json.loads(first.stdout)["kid"]
    rows = _keys(url)
    assert [(row["kid"], row["signing"], row["published"]) for row in rows] == [(kid, True, True)]
    assert rows[0]["activates_at"] == rows[0]["created_at"]  # the first key signs at once
    second = invoke("keys", "rotate", "--database-url", url, "--key-encryption-secret", SECRET)
    assert second.exit_code == 0 and second.stdout.startswith("new signing key ")
    rows = _keys(url)
    assert len(rows) == 2 and rows[0]["kid"] == kid and rows[0]["signing"] is True
    assert rows[0]["retires_at"] is not None and rows[1]["signing"] is False  # published before it signs
    assert set(rows[0]) == {"kid", "algorithm", "created_at", "activates_at", "retires_at", "expires_at",
                            "signing", "published"}
    assert kid in invoke("keys", "list", "--database-url", url).stdout


def test_rotate_needs_the_right_secret(url: str) -> None:
    missing = invoke("keys", "rotate", "--database-url", url)
    assert missing.exit_code == 2 and "KEY_ENCRYPTION_SECRET" in missing.stderr
    assert invoke("keys", "rotate", "--database-url", url, "--key-encryption-secret", "short").exit_code == 2
    assert invoke("keys", "rotate", "--database-url", url, "--key-encryption-secret", SECRET).exit_code == 0
    wrong = invoke("keys", "rotate", "--database-url", url, "--key-encryption-secret", "w" * 40)
    assert wrong.exit_code == 1 and "does not decrypt" in wrong.stderr


def test_token_refuses_without_dev(tmp_path: Path) -> None:
    result = invoke("token", "--subject", "alice")
    assert result.exit_code == 2 and "--dev" in result.stderr and "consent" in result.stderr


def test_token_with_managed_keys_verifies_by_the_published_key(url: str) -> None:
    result = invoke("token", "--dev", "--subject", "alice", "--scopes", "mcp:read,mcp:tools", "--database-url", url,
                    "--json", "--key-encryption-secret", SECRET, "--issuer", "https://auth.example",
                    "--client-id", "dev", "--lifetime", "600")
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    (key,) = _keys(url)
    assert body["kid"] == key["kid"] and body["expires_in"] == 600

    header = jwt.get_unverified_header(body["access_token"])
    assert header["typ"] == "at+jwt" and header["kid"] == key["kid"]
    (stored,) = _stored_keys(url)
    claims = jwt.decode(body["access_token"], jwt.PyJWK.from_json(stored.public_jwk), algorithms=[stored.algorithm],
                        audience="https://auth.example/mcp", issuer="https://auth.example")
    assert claims["sub"] == "alice" and claims["scope"] == "mcp:read mcp:tools" and claims["client_id"] == "dev"


def _stored_keys(url: str) -> list[SigningKey]:
    async def read() -> list[SigningKey]:
        model = SQLAlchemyOAuthServerModel(url, access_token_cache_ttl=0, client_cache_ttl=0)
        try:
            return await model.list_signing_keys()
        finally:
            await model.close()

    return asyncio.run(read())


def test_token_with_a_key_file_needs_no_database(tmp_path: Path) -> None:
    private = keys.generate("ES256")
    pem = tmp_path / "key.pem"
    pem.write_bytes(keys.to_pem(private))
    result = invoke("token", "--dev", "--subject", "alice", "--scopes", "mcp:read", "--signing-key-file", str(pem),
                    "--resource", "https://mcp.example/mcp", "--issuer", "https://auth.example")
    assert result.exit_code == 0, result.output
    claims = jwt.decode(result.stdout.strip(), private.public_key(), algorithms=["ES256"],
                        audience="https://mcp.example/mcp", issuer="https://auth.example")
    assert claims["sub"] == "alice" and claims["scope"] == "mcp:read" and claims["client_id"] == "oauth-server-cli"


@pytest.mark.parametrize("content", ["not a key", ""])
def test_token_with_a_bad_key_file_is_2(tmp_path: Path, content: str) -> None:
    pem = tmp_path / "key.pem"
    pem.write_text(content)
    result = invoke("token", "--dev", "--subject", "alice", "--signing-key-file", str(pem))
    assert result.exit_code == 2 and "Traceback" not in result.output
