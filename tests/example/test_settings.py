"""The example's settings for JWT access tokens and the split deployment, read from the environment.

A combination that cannot work is refused at start with what to set (``SettingsError``, printed
by ``main`` as one line, exit status 2), never papered over: JWT access tokens without a key must
not get one derived from something public, and a loopback issuer is reached only when asked for.
"""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest
import uvicorn

import example.server
from example.server import create_app, startup_banner
from example.settings import SECRET_HINT, ExampleSettings, SettingsError
from oauth_server import keys
from tests.example.conftest import StartExample
from tests.example.running import example_settings
from tests.example.split import SECRET, example_tokens, kid, mcp_status

ISSUER = "https://auth.example.com"


def test_defaults_are_one_process_with_opaque_tokens() -> None:
    settings = ExampleSettings.from_env({})
    assert settings.access_token_format == "opaque"
    assert (settings.auth_issuer, settings.auth_allow_loopback, settings.resource_server_only) == (None, False, False)
    assert (settings.resource_urls, settings.signing_key_file, settings.key_encryption_secret) == ((), None, None)
    assert (settings.signing_key_propagation, settings.auth_jwks_refetch_interval) == (300, 60.0)


def test_jwt_settings_are_read_from_the_environment(tmp_path: Path) -> None:
    settings = ExampleSettings.from_env({
        "ACCESS_TOKEN_FORMAT": "JWT", "KEY_ENCRYPTION_SECRET": SECRET, "SIGNING_KEY_FILE": str(tmp_path / "key.pem"),
        "SIGNING_KEY_PROPAGATION": "5", "RESOURCE_URLS": " http://localhost:8001/mcp, ,https://mcp.example.com/mcp,"})
    assert settings.access_token_format == "jwt" and settings.key_encryption_secret == SECRET
    assert settings.signing_key_file == tmp_path / "key.pem" and settings.signing_key_propagation == 5
    assert settings.resource_urls == ("http://localhost:8001/mcp", "https://mcp.example.com/mcp")
    assert SECRET not in repr(settings), "the secret stays out of reprs and tracebacks"


def test_jwt_without_any_key_is_refused_with_how_to_make_a_secret() -> None:
    """Nothing is derived silently: a key made from a public value would let anyone forge tokens."""
    with pytest.raises(SettingsError, match="KEY_ENCRYPTION_SECRET") as refused:
        ExampleSettings.from_env({"ACCESS_TOKEN_FORMAT": "jwt"})
    assert SECRET_HINT in str(refused.value) and "SIGNING_KEY_FILE" in str(refused.value)
    assert SECRET_HINT == 'python -c "import secrets; print(secrets.token_urlsafe(32))"'


@pytest.mark.parametrize(("env", "message"), [
    ({"ACCESS_TOKEN_FORMAT": "jwt", "KEY_ENCRYPTION_SECRET": "x" * 31}, "at least 32 bytes"),
    ({"ACCESS_TOKEN_FORMAT": "paseto"}, "ACCESS_TOKEN_FORMAT must be opaque or jwt"),
    ({"SIGNING_KEY_PROPAGATION": "-1"}, "SIGNING_KEY_PROPAGATION"),
    ({"SIGNING_KEY_PROPAGATION": "soon"}, "SIGNING_KEY_PROPAGATION must be a whole number"),
    ({"RESOURCE_URLS": "mcp.example.com/mcp"}, "RESOURCE_URLS must be an absolute"),
    ({"RESOURCE_URLS": "https://mcp.example.com/mcp#x"}, "RESOURCE_URLS must be an absolute"),
    ({"AUTH_ISSUER": "http://localhost:8000", "PORT": "8001"}, "set AUTH_ALLOW_LOOPBACK=on"),
    ({"AUTH_ISSUER": "http://127.0.0.1:8000"}, "set AUTH_ALLOW_LOOPBACK=on"),
    ({"AUTH_ISSUER": "http://[::1]:8000"}, "set AUTH_ALLOW_LOOPBACK=on"),
    ({"AUTH_ISSUER": "http://auth.example.com"}, "AUTH_ISSUER must use https"),
    ({"AUTH_ISSUER": "https://auth.example.com?tenant=1"}, "AUTH_ISSUER must be an absolute"),
    ({"AUTH_ISSUER": ISSUER, "AUTH_ALLOW_LOOPBACK": "maybe"}, "AUTH_ALLOW_LOOPBACK must be on or off"),
    ({"AUTH_ISSUER": ISSUER, "AUTH_JWKS_REFETCH_INTERVAL": "0"}, "AUTH_JWKS_REFETCH_INTERVAL must be > 0"),
])
def test_settings_that_cannot_work_are_refused(env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=re.escape(message)):
        ExampleSettings.from_env(env)


def test_auth_issuer_makes_a_resource_server_only_unless_it_is_this_server() -> None:
    remote = ExampleSettings.from_env({"AUTH_ISSUER": ISSUER, "AUTH_JWKS_REFETCH_INTERVAL": "5"})
    assert remote.resource_server_only and remote.auth_issuer == ISSUER
    assert not remote.auth_allow_loopback, "loopback stays refused for an issuer elsewhere"
    assert remote.auth_jwks_refetch_interval == 5.0
    local = ExampleSettings.from_env({"AUTH_ISSUER": "http://localhost:8000", "AUTH_ALLOW_LOOPBACK": "on",
                                      "PORT": "8001"})
    assert local.resource_server_only and local.auth_allow_loopback
    itself = ExampleSettings.from_env({"AUTH_ISSUER": "http://localhost:8000/", "ACCESS_TOKEN_FORMAT": "jwt",
                                       "KEY_ENCRYPTION_SECRET": SECRET})
    assert not itself.resource_server_only, "AUTH_ISSUER equal to PUBLIC_URL is this authorization server"


def test_banners_say_which_role_and_which_tokens_never_the_secret() -> None:
    issuer = ExampleSettings.from_env({"ACCESS_TOKEN_FORMAT": "jwt", "KEY_ENCRYPTION_SECRET": SECRET,
                                       "RESOURCE_URLS": "http://localhost:8001/mcp"})
    banner = startup_banner(issuer)
    assert "JWKS: http://localhost:8000/.well-known/jwks.json" in banner
    assert "Also issues tokens for: http://localhost:8001/mcp" in banner
    assert SECRET not in banner
    resource = startup_banner(ExampleSettings.from_env({"AUTH_ISSUER": ISSUER, "PORT": "8001"}))
    assert f"Resource server of {ISSUER}   MCP endpoint: http://localhost:8001/mcp" in resource
    assert "Demo users" not in resource and "Issuer:" not in resource


def test_main_refuses_jwt_without_a_key_in_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``python -m example.server`` with ``ACCESS_TOKEN_FORMAT=jwt`` alone: exit status 2, no server."""
    served: list[object] = []
    monkeypatch.setenv("ACCESS_TOKEN_FORMAT", "jwt")
    monkeypatch.delenv("KEY_ENCRYPTION_SECRET", raising=False)
    monkeypatch.delenv("SIGNING_KEY_FILE", raising=False)
    monkeypatch.setattr(uvicorn, "run", lambda app, **options: served.append(app))
    with pytest.raises(SystemExit) as exited:
        example.server.main()
    assert exited.value.code == 2 and served == []
    error = capsys.readouterr().err.strip()
    assert error.startswith("error: ACCESS_TOKEN_FORMAT=jwt needs signing keys") and "\n" not in error
    assert SECRET_HINT in error


def test_main_warns_about_authorization_server_settings_a_resource_server_ignores(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("AUTH_ISSUER", ISSUER)
    monkeypatch.setenv("RESOURCE_URLS", "https://other.example.com/mcp")
    monkeypatch.setenv("KEY_ENCRYPTION_SECRET", SECRET)
    monkeypatch.setenv("LOG_LEVEL", "WARNING")
    monkeypatch.setenv("GC_TUNING", "off")  # main() runs in this test process
    monkeypatch.setattr(uvicorn, "run", lambda app, **options: None)
    example.server.main()
    assert "ignoring KEY_ENCRYPTION_SECRET, RESOURCE_URLS" in caplog.text
    assert SECRET not in caplog.text


def test_an_unreadable_signing_key_file_is_refused(tmp_path: Path) -> None:
    settings = example_settings(tmp_path, 8000, access_token_format="jwt", signing_key_file=tmp_path / "missing.pem")
    with pytest.raises(SettingsError, match=r"SIGNING_KEY_FILE .* cannot be read"):
        create_app(settings)


async def test_signing_key_file_signs_and_is_the_only_published_key(
    start_example: StartExample, tmp_path: Path
) -> None:
    """The app's own key (here ES256) signs every token and is the JWKS; no key is managed."""
    private = keys.generate("ES256")
    key_file = tmp_path / "signing-key.pem"
    key_file.write_bytes(keys.to_pem(private))
    expected = keys.public_jwk(private)
    async with start_example(access_token_format="jwt", signing_key_file=key_file, rate_limit=False) as base, \
            httpx.AsyncClient(base_url=base) as http:
        jwks = (await http.get("/.well-known/jwks.json")).json()
        assert jwks == {"keys": [expected]}
        token = (await example_tokens(http, f"{base}/mcp"))["access_token"]
        assert kid(token) == expected["kid"] and expected["alg"] == "ES256"
        assert (await mcp_status(http, f"{base}/mcp", token)).status_code == 200


async def test_a_different_key_encryption_secret_stops_the_start(tmp_path: Path) -> None:
    """AES-GCM authenticates each stored key with the secret it was encrypted under: with another
    secret the example refuses to start rather than fail every token request afterwards."""
    first = create_app(example_settings(tmp_path, 8000, access_token_format="jwt", key_encryption_secret=SECRET))
    async with first.router.lifespan_context(first):
        await first.state.oauth_server.rotate_signing_keys()  # stores an encrypted key
    again = create_app(example_settings(tmp_path, 8000, access_token_format="jwt", key_encryption_secret=SECRET))
    async with again.router.lifespan_context(again):
        assert len((await again.state.oauth_server.jwks())["keys"]) == 1
    other = create_app(example_settings(tmp_path, 8000, access_token_format="jwt",
                                        key_encryption_secret="another secret of at least 32 bytes"))
    with pytest.raises(SettingsError, match="KEY_ENCRYPTION_SECRET cannot decrypt the signing keys"):
        async with other.router.lifespan_context(other):
            pass
