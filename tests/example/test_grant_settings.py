"""The example's switches for the machine and enterprise grants: ``DCR_CLIENT_CREDENTIALS``
(off by default) and one trusted identity provider (``IDJAG_ISSUER`` + ``IDJAG_JWKS_URI``)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from example.server import server_settings
from example.settings import ExampleSettings, SettingsError
from oauth_server import TrustedIdentityProvider
from tests.example.running import running_example

JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"


def test_defaults_keep_machine_registration_and_id_jag_off() -> None:
    settings = server_settings(ExampleSettings.from_env({}))
    assert settings.dcr_client_credentials is False and settings.trusted_identity_providers == ()


def test_grant_switches_are_read_from_the_environment() -> None:
    example = ExampleSettings.from_env({"DCR_CLIENT_CREDENTIALS": "on", "IDJAG_ISSUER": "https://idp.example.com",
                                        "IDJAG_JWKS_URI": "http://127.0.0.1:9000/jwks.json",
                                        "IDJAG_ALLOW_LOOPBACK": "on"})
    settings = server_settings(example)
    assert settings.dcr_client_credentials is True
    assert settings.trusted_identity_providers == (TrustedIdentityProvider(
        "https://idp.example.com", "http://127.0.0.1:9000/jwks.json", allow_loopback=True),)


@pytest.mark.parametrize("env", [{"IDJAG_ISSUER": "https://idp.example.com"},
                                 {"IDJAG_JWKS_URI": "https://idp.example.com/jwks.json"},
                                 {"DCR_CLIENT_CREDENTIALS": "maybe"}])
def test_incomplete_grant_settings_are_refused(env: dict[str, str]) -> None:
    with pytest.raises(SettingsError):
        ExampleSettings.from_env(env)


def test_identity_provider_keys_need_https_off_this_machine() -> None:
    example = ExampleSettings.from_env({"IDJAG_ISSUER": "https://idp.example.com",
                                        "IDJAG_JWKS_URI": "http://idp.example.com/jwks.json"})
    with pytest.raises(ValueError, match="https"):
        server_settings(example)


async def test_example_by_default_refuses_machine_registration(tmp_path: Path) -> None:
    """Off by default: registering for client_credentials is ``invalid_client_metadata``, and
    metadata lists the grants /token takes (no jwt-bearer without a trusted provider)."""
    async with running_example(tmp_path) as base, httpx.AsyncClient(base_url=base) as http:
        response = await http.post("/register", json={"grant_types": ["client_credentials"]})
        assert response.status_code == 400 and response.json()["error"] == "invalid_client_metadata"
        doc = (await http.get("/.well-known/oauth-authorization-server")).json()
        assert doc["grant_types_supported"] == ["authorization_code", "refresh_token", "client_credentials",
                                                 "urn:ietf:params:oauth:grant-type:device_code"]
        response = await http.post("/token", data={"grant_type": JWT_BEARER, "assertion": "x", "client_id": "nobody"})
        assert response.status_code == 401  # unknown client first; the grant itself is unsupported here
