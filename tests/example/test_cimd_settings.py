"""The example's client ID metadata document switches: CIMD, CIMD_ALLOW_LOOPBACK, CIMD_CA_BUNDLE."""

from __future__ import annotations

from pathlib import Path

import pytest

from example.server import server_settings
from example.settings import ExampleSettings, SettingsError


def test_cimd_on_by_default_and_loopback_off() -> None:
    """A metadata URL is chosen by a stranger: it must not reach inside unless a developer asks."""
    oauth = server_settings(ExampleSettings.from_env({}))
    assert oauth.client_id_metadata_documents and not oauth.cimd_allow_loopback and oauth.cimd_ca_bundle is None


def test_cimd_switches_are_read(tmp_path: Path) -> None:
    bundle = tmp_path / "ca.pem"
    bundle.write_text("-----BEGIN CERTIFICATE-----\n")
    oauth = server_settings(ExampleSettings.from_env(
        {"CIMD": "off", "CIMD_ALLOW_LOOPBACK": "on", "CIMD_CA_BUNDLE": str(bundle)}))
    assert (oauth.client_id_metadata_documents, oauth.cimd_allow_loopback, oauth.cimd_ca_bundle) == (
        False, True, str(bundle))


def test_missing_ca_bundle_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="CIMD_CA_BUNDLE"):
        ExampleSettings.from_env({"CIMD_CA_BUNDLE": str(tmp_path / "missing.pem")})
