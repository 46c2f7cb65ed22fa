"""Fixtures for resource-server tests: a frozen clock, an issuer with RS256/ES256/EdDSA keys."""

from __future__ import annotations

import pytest

from tests.helpers import FrozenClock
from tests.resource.support import FakeIssuer, SigningKey


@pytest.fixture(scope="session")
def rsa_key() -> SigningKey:
    return SigningKey("RS256", "rsa-1")


@pytest.fixture(scope="session")
def ec_key() -> SigningKey:
    return SigningKey("ES256", "ec-1")


@pytest.fixture(scope="session")
def ed_key() -> SigningKey:
    return SigningKey("EdDSA", "ed-1")


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock()


@pytest.fixture
def issuer(rsa_key: SigningKey, ec_key: SigningKey, ed_key: SigningKey) -> FakeIssuer:
    return FakeIssuer(rsa_key, ec_key, ed_key)
